// Downloads over http(s) and file:// URLs (libcurl), for FROM_URL and ADD.
#pragma once

#include <string>

#include "core/base/unique_fd.h"

namespace pieces::image {

/// Writes what `url` names into `out` (truncated first). HTTP errors (4xx/5xx), unsupported
/// schemes and broken transfers throw one line naming the URL.
void fetch(const std::string& url, borrowed_fd out);

/// True for URLs fetch() understands (http://, https://, file://).
bool is_url(const std::string& text);

}  // namespace pieces::image
