#include "core/image/fetch.h"

#include <unistd.h>

#include <memory>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/curl_api.h"

namespace pieces::image {
namespace {

struct sink {
    int fd;
    int err = 0;
};

size_t write_to_fd(char* data, size_t size, size_t count, void* user) {
    auto* s = static_cast<sink*>(user);
    size_t total = size * count;
    size_t done = 0;
    while (done < total) {
        ssize_t n = ::write(s->fd, data + done, total - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            s->err = errno;
            return 0;  // makes curl stop with a write error
        }
        done += static_cast<size_t>(n);
    }
    return total;
}

}  // namespace

bool is_url(const std::string& text) {
    return text.rfind("http://", 0) == 0 || text.rfind("https://", 0) == 0 || text.rfind("file://", 0) == 0;
}

void fetch(const std::string& url, borrowed_fd out) {
    if (!is_url(url)) throw error(quote(url) + ": not an http(s) or file URL");
    const curl_api& api = image::curl();
    std::unique_ptr<CURL, void (*)(CURL*)> curl(api.easy_init(), api.easy_cleanup);
    if (!curl) throw error("libcurl: no handle");
    if (::ftruncate(out.get(), 0) < 0 || ::lseek(out.get(), 0, SEEK_SET) < 0) throw_errno("truncate download file");
    sink s{out.get()};
    char errbuf[CURL_ERROR_SIZE] = "";
    api.easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    api.easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    api.easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 10L);
    api.easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
    api.easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https,file");
    api.easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    api.easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_to_fd);
    api.easy_setopt(curl.get(), CURLOPT_WRITEDATA, &s);
    api.easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
    api.easy_setopt(curl.get(), CURLOPT_USERAGENT, "pieces/" PIECES_VERSION);
    api.easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    CURLcode rc = api.easy_perform(curl.get());
    if (rc != CURLE_OK) {
        if (s.err) throw_errno_code(s.err, "download " + quote(url) + ": write");
        throw error("download " + quote(url) + ": " + (errbuf[0] ? errbuf : api.easy_strerror(rc)));
    }
}

}  // namespace pieces::image
