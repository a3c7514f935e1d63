#include "core/image/curl_api.h"

#include <string>

#include "core/base/dynamic_library.h"
#include "core/base/error.h"

namespace pieces::image {
namespace {

curl_api load() {
    void* lib = open_library("libcurl.so.4", "libcurl is needed for downloads and registries");
    curl_api api{};
    resolve_symbol(lib, api.global_init, "curl_global_init", "libcurl");
    resolve_symbol(lib, api.easy_init, "curl_easy_init", "libcurl");
    resolve_symbol(lib, api.easy_setopt, "curl_easy_setopt", "libcurl");
    resolve_symbol(lib, api.easy_perform, "curl_easy_perform", "libcurl");
    resolve_symbol(lib, api.easy_getinfo, "curl_easy_getinfo", "libcurl");
    resolve_symbol(lib, api.easy_cleanup, "curl_easy_cleanup", "libcurl");
    resolve_symbol(lib, api.easy_strerror, "curl_easy_strerror", "libcurl");
    resolve_symbol(lib, api.slist_append, "curl_slist_append", "libcurl");
    resolve_symbol(lib, api.slist_free_all, "curl_slist_free_all", "libcurl");
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw error("libcurl: initialisation failed");
    return api;
}

}  // namespace

const curl_api& curl() {
    static const curl_api api = load();  // once; concurrent first calls wait for it
    return api;
}

}  // namespace pieces::image
