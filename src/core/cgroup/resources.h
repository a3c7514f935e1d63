// linux.resources translated into cgroup v1 file writes: pure functions, applied by group.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::cgroup {

/// One write into a controller's file: "memory", "memory.limit_in_bytes", "67108864".
struct setting {
    std::string controller;
    std::string file;
    std::string value;
    bool optional = false;  ///< skipped (not an error) when the kernel lacks the file
    /// A memory limit to refuse when the cgroup already uses that much (checkBeforeUpdate).
    bool check_usage = false;
    /// The host must offer the controller: fail instead of skipping it (rdma).
    bool required = false;
    /// Written instead of file/value where the kernel offers it: BFQ's weight files
    /// (blkio.bfq.weight, io.bfq.weight), which take the place of the generic ones when BFQ
    /// is the I/O scheduler, as runc prefers them.
    std::string preferred_file{};
    std::string preferred_value{};
    /// The file and value to write into `dir`: the preferred pair when `dir` has that file.
    std::pair<std::string, std::string> target(const std::string& dir) const;
};

/// What linux.resources means on a v1 hierarchy, in the order it must be written. Errors name
/// the field ("linux.resources.memory.limit: ...").
std::vector<setting> v1_settings(const nlohmann::json& resources);

/// What linux.resources means on cgroup2, with runc's conversions (shares -> cpu.weight,
/// blkio weight -> io.weight, swap -> memory.swap.max as swap minus limit) and `unified`
/// passed through. Device rules come out as v1 devices.allow/deny settings, for apply_v2.
std::vector<setting> v2_settings(const nlohmann::json& resources);

/// linux.resources.rdma as rdma.max lines, the same on v1 and cgroup2:
/// {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}} -> "mlx5_0 hca_handle=3 hca_object=100".
std::vector<setting> rdma_settings(const nlohmann::json& rdma, const std::string& where);

/// "unable to set memory limit to N (current usage: M, peak usage: P)" when `limit` is not
/// above `usage`, else "".
std::string memory_usage_refusal(int64_t limit, uint64_t usage, uint64_t peak);

/// Writes settings into one cgroup2 directory (the controller is implied by the file name);
/// "devices" settings become one BPF device program attached there, replacing ours from before.
void apply_v2(const std::string& dir, const std::vector<setting>& settings);

/// The device rules the runtime itself relies on (null, zero, full, random, urandom, tty,
/// console, ptmx, pts, and mknod of anything), appended after the config's rules.
std::vector<std::string> default_device_allows();

}  // namespace pieces::cgroup
