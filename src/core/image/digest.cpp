#include "core/image/digest.h"

#include <nettle/sha2.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/hex.h"

namespace pieces::image {

digest digest::parse(std::string_view text) {
    constexpr std::string_view prefix = "sha256:";
    bool ok = text.size() == prefix.size() + 64 && text.substr(0, prefix.size()) == prefix;
    for (size_t i = prefix.size(); ok && i < text.size(); ++i)
        ok = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');
    if (!ok) throw error(quote(std::string(text)) + " is not a digest (expected sha256:<64 hex digits>)");
    return digest(std::string(text));
}

struct sha256::state {
    sha256_ctx ctx;
};

sha256::sha256() : state_(std::make_unique<state>()) { sha256_init(&state_->ctx); }

sha256::~sha256() = default;

void sha256::update(const void* data, size_t size) {
    sha256_update(&state_->ctx, size, static_cast<const uint8_t*>(data));
}

digest sha256::finish() {
    uint8_t out[SHA256_DIGEST_SIZE];
    sha256_digest(&state_->ctx, sizeof out, out);
    return digest("sha256:" + hex_of(out, sizeof out));
}

digest sha256_of(std::string_view data) {
    sha256 h;
    h.update(data);
    return h.finish();
}

digest sha256_of(borrowed_fd fd) {
    sha256 h;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read for sha256");
        if (n == 0) break;
        h.update(buf, static_cast<size_t>(n));
    }
    return h.finish();
}

}  // namespace pieces::image
