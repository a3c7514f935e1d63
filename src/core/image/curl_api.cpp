#include "core/image/curl_api.h"

#include <dlfcn.h>

#include <string>

#include "core/base/error.h"

namespace pieces::image {
namespace {

template <typename Fn>
void resolve(void* lib, Fn& slot, const char* name) {
    void* sym = ::dlsym(lib, name);
    if (!sym) throw error(std::string("libcurl: no symbol ") + name);
    slot = reinterpret_cast<Fn>(sym);
}

curl_api load() {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw error(std::string("libcurl is needed for downloads and registries: ") + ::dlerror());
    curl_api api{};
    resolve(lib, api.global_init, "curl_global_init");
    resolve(lib, api.easy_init, "curl_easy_init");
    resolve(lib, api.easy_setopt, "curl_easy_setopt");
    resolve(lib, api.easy_perform, "curl_easy_perform");
    resolve(lib, api.easy_getinfo, "curl_easy_getinfo");
    resolve(lib, api.easy_cleanup, "curl_easy_cleanup");
    resolve(lib, api.easy_strerror, "curl_easy_strerror");
    resolve(lib, api.slist_append, "curl_slist_append");
    resolve(lib, api.slist_free_all, "curl_slist_free_all");
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw error("libcurl: initialisation failed");
    return api;
}

}  // namespace

const curl_api& curl() {
    static const curl_api api = load();  // once; concurrent first calls wait for it
    return api;
}

}  // namespace pieces::image
