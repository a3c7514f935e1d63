#include "core/image/digest.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"

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
    EVP_MD_CTX* ctx = nullptr;
    ~state() { EVP_MD_CTX_free(ctx); }
};

sha256::sha256() : state_(std::make_unique<state>()) {
    state_->ctx = EVP_MD_CTX_new();
    if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) throw error("sha256: cannot initialise");
}

sha256::~sha256() = default;

void sha256::update(const void* data, size_t size) {
    if (EVP_DigestUpdate(state_->ctx, data, size) != 1) throw error("sha256: update failed");
}

digest sha256::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(state_->ctx, out, &len) != 1) throw error("sha256: final failed");
    static constexpr char hexdigits[] = "0123456789abcdef";
    std::string text = "sha256:";
    for (unsigned i = 0; i < len; ++i) {
        text += hexdigits[out[i] >> 4];
        text += hexdigits[out[i] & 15];
    }
    return digest(std::move(text));
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
