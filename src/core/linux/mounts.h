// Mounting inside the container's root: config mounts, masked and read-only paths.
#pragma once

#include <string>

#include "core/base/unique_fd.h"
#include "core/spec/config.h"

namespace pieces::linux_ {

/// What mounting needs to know about the container being set up.
struct rootfs_target {
    std::string rootfs;   ///< absolute host path of the root filesystem
    std::string bundle;   ///< bundle directory, for relative bind sources
    unique_fd root;       ///< O_PATH fd of the rootfs mount; every destination resolves under it
    bool in_userns = false;
    bool cgroupns = false;  ///< a new cgroup namespace: cgroup mounts show it as their root
    std::string mount_label;  ///< linux.mountLabel (SELinux context= for the filesystems made)
};

/// Mounts one config entry at its destination, resolved inside the root and created when missing.
void mount_entry(const rootfs_target& t, const spec::mount& m);

/// Hides each path: a read-only empty tmpfs over a directory, /dev/null over anything else.
void mask_paths(const rootfs_target& t, const std::vector<std::string>& paths);

/// Makes each path (and what is mounted below it) read-only by binding it over itself.
void make_paths_readonly(const rootfs_target& t, const std::vector<std::string>& paths);

/// Sets MOUNT_ATTR_* flags on the mount `fd` refers to.
void set_mount_attr(borrowed_fd fd, uint64_t set, uint64_t clear, bool recursive, std::string_view what);

}  // namespace pieces::linux_
