// Readers for /proc files that several layers need: mountinfo, cgroup membership, process stat.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pieces::procfs {

/// One line of /proc/self/mountinfo (the fields we use).
struct mount_info {
    std::string root;         ///< root of the mount within its filesystem
    std::string mount_point;  ///< where it is mounted
    std::string fstype;
    std::string super_options;
};

/// Parses /proc/PID/mountinfo ("self" by default).
std::vector<mount_info> mountinfo(const std::string& pid = "self");

/// One line of /proc/PID/cgroup: hierarchy id, controllers (comma-separated, empty for v2), path.
struct cgroup_membership {
    int hierarchy = 0;
    std::string controllers;
    std::string path;
};

/// Parses /proc/PID/cgroup.
std::vector<cgroup_membership> cgroups(const std::string& pid = "self");

/// What /proc/PID/stat says of a process, or nullopt when it does not exist.
struct process_stat {
    char state = '?';               ///< R, S, Z, ...
    pid_t ppid = 0;
    unsigned long long start_time = 0;  ///< in clock ticks since boot: tells a reused pid apart
};
std::optional<process_stat> stat(pid_t pid);

/// Writes to a file under /proc, first checking the open file is on procfs: a mount over /proc
/// (or a path redirected elsewhere) must not turn a sysctl or oom_score_adj write into a write
/// to some other file.
void write(const std::string& path, std::string_view data);

/// Throws unless `fd` is a file on procfs.
void check_on_procfs(int fd, const std::string& path);

}  // namespace pieces::procfs
