// The container's root: propagation, the rootfs bind, devices, pivot_root.
#pragma once

#include <string>

#include "core/linux/mounts.h"
#include "core/spec/config.h"

namespace pieces::linux_ {

/// Makes mounts below "/" stop propagating to the host (or as rootfsPropagation says), binds the
/// rootfs over itself so it is a mount point, and returns the target with its root fd.
rootfs_target prepare_rootfs(const spec::config& cfg, const std::string& bundle, bool in_userns, bool cgroupns);

/// Makes the default devices (null, zero, full, random, urandom, tty), linux.devices, and the
/// /dev symlinks (fd, stdin, stdout, stderr, ptmx). Binds host devices inside a user namespace.
void create_devices(const rootfs_target& t, const spec::config& cfg);

/// Switches "/" to the rootfs: pivot_root and a detached old root, or MS_MOVE + chroot with `no_pivot`.
void enter_rootfs(const rootfs_target& t, bool no_pivot);

/// Makes the root mount read-only (root.readonly).
void make_root_readonly(const rootfs_target& t);

}  // namespace pieces::linux_
