// Readers for /proc files that several layers need: mountinfo, cgroup membership, process stat.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/unique_fd.h"

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

/// A procfs of our own to write through (CVE-2025-52881): where the kernel allows it a fresh
/// procfs instance mounted nowhere (fsopen + fsmount), which nobody else can mount over or
/// redirect; else the /proc we see. Either way files are opened beneath it without following
/// symlinks or crossing a mount (openat2), and checked to be on procfs: a bind mount over
/// /proc/sys/... or /proc/self/attr/... cannot turn our write into a write to another file.
/// The instance belongs to the pid namespace of the process that opens it: open it in the
/// process that writes.
class handle {
public:
    static handle open();
    /// The /proc we see (what open() falls back to).
    static handle open_shared();
    /// Writes `data` to `path`, relative to the procfs root ("sys/kernel/domainname",
    /// "self/attr/exec"); "self" and "thread-self" mean this process and thread.
    void write(std::string_view path, std::string_view data) const;
    /// True when the handle is a private instance (not the shared /proc).
    bool is_private() const { return private_; }

private:
    handle(unique_fd root, bool is_private) : root_(std::move(root)), private_(is_private) {}
    unique_fd root_;
    bool private_;
};



}  // namespace pieces::procfs
