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

/// What linux.resources means on cgroup2, with runc's conversions (shares -> cpu.weight,
/// blkio weight -> io.weight, swap -> memory.swap.max as swap minus limit) and `unified`
/// passed through. Device rules come out as v1 devices.allow/deny settings, for apply_v2.
std::vector<setting> v2_settings(const nlohmann::json& resources);

/// Writes settings into one cgroup2 directory (the controller is implied by the file name);
/// "devices" settings become one BPF device program attached there, replacing ours from before.
void apply_v2(const std::string& dir, const std::vector<setting>& settings);

/// The device rules the runtime itself relies on (null, zero, full, random, urandom, tty,
/// console, ptmx, pts, and mknod of anything), appended after the config's rules.
std::vector<std::string> default_device_allows();

}  // namespace pieces::cgroup
