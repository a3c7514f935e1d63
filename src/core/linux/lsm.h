// Linux security modules: the AppArmor profile and the SELinux labels a container runs under.
#pragma once

#include <string>

#include "core/spec/config.h"

namespace pieces::linux_ {

/// AppArmor is loaded and enabled on this host.
bool apparmor_enabled();
/// SELinux is enabled (selinuxfs mounted) on this host.
bool selinux_enabled();

/// Refuses, in one line naming the field, a profile or label this host cannot apply: running
/// a container unconfined when a profile was asked for would be a silent downgrade.
void check_lsm_supported(const spec::process& p, const std::string& mount_label);

/// Arranges for the process's next execve to run under its AppArmor profile and SELinux label
/// (attr/apparmor/exec or attr/exec, written through our own procfs). Call right before the
/// capability drop; the change takes effect at execve.
void set_exec_labels(const spec::process& p);

/// The SELinux label of keyrings this process creates from now on (attr/keycreate).
void set_keyring_label(const std::string& label);

/// `data` with SELinux's context= option added for `label`, for filesystems that take it.
std::string with_mount_label(const std::string& data, const std::string& fstype, const std::string& label);

}  // namespace pieces::linux_
