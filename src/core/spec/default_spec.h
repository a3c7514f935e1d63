// The config.json that `puncker spec` writes: a busybox-friendly default, like runc's.
#pragma once

#include <nlohmann/json.hpp>

namespace pieces::spec {

/// A default config: `sh` on a terminal, the usual mounts, masked and read-only paths, a small
/// capability set. `rootless` maps the caller's uid/gid to root in a new user namespace and
/// binds /sys instead of mounting it.
nlohmann::json default_config(bool rootless);

}  // namespace pieces::spec
