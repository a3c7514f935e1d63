// linux.resources translated into cgroup v1 file writes: pure functions, applied by group.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::cgroup {

/// One write into a controller's file: "memory", "memory.limit_in_bytes", "67108864".
struct setting {
    std::string controller;
    std::string file;
    std::string value;
    bool optional = false;  ///< skipped (not an error) when the kernel lacks the file
};

/// What linux.resources means on a v1 hierarchy, in the order it must be written. Errors name
/// the field ("linux.resources.memory.limit: ...").
std::vector<setting> v1_settings(const nlohmann::json& resources);

/// The device rules the runtime itself relies on (null, zero, full, random, urandom, tty,
/// console, ptmx, pts, and mknod of anything), appended after the config's rules.
std::vector<std::string> default_device_allows();

}  // namespace pieces::cgroup
