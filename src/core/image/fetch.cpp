#include "core/image/fetch.h"

#include <curl/curl.h>
#include <unistd.h>

#include <memory>

#include "core/base/error.h"
#include "core/base/fs.h"

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
    static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!initialised) throw error("libcurl: initialisation failed");
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw error("libcurl: no handle");
    if (::ftruncate(out.get(), 0) < 0 || ::lseek(out.get(), 0, SEEK_SET) < 0) throw_errno("truncate download file");
    sink s{out.get()};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_to_fd);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "pieces/" PIECES_VERSION);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) {
        if (s.err) throw_errno_code(s.err, "download " + quote(url) + ": write");
        throw error("download " + quote(url) + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
}

}  // namespace pieces::image
