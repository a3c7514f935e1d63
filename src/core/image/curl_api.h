// libcurl, loaded when first needed. Most pieces commands never touch the network, and linking
// libcurl in would make every start-up load its dozens of dependent libraries (measured: 7 of
// the 8.6 ms of `pieces --version`).
#pragma once

#include <curl/curl.h>

namespace pieces::image {

/// The libcurl calls pieces makes, resolved from libcurl.so.4.
struct curl_api {
    CURLcode (*global_init)(long flags);
    CURL* (*easy_init)();
    CURLcode (*easy_setopt)(CURL* handle, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL* handle);
    CURLcode (*easy_getinfo)(CURL* handle, CURLINFO info, ...);
    void (*easy_cleanup)(CURL* handle);
    const char* (*easy_strerror)(CURLcode code);
    curl_slist* (*slist_append)(curl_slist* list, const char* text);
    void (*slist_free_all)(curl_slist* list);
};

/// Loads libcurl (once per process; thread-safe) and initialises it; throws one line naming
/// what is missing when it cannot.
const curl_api& curl();

}  // namespace pieces::image
