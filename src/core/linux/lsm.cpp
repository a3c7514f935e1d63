#include "core/linux/lsm.h"

#include <unistd.h>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"

namespace pieces::linux_ {

bool apparmor_enabled() {
    try {
        return read_file("/sys/module/apparmor/parameters/enabled").rfind('Y', 0) == 0 &&
               ::access("/sys/kernel/security/apparmor", F_OK) == 0;
    } catch (const error&) {
        return false;
    }
}

bool selinux_enabled() { return ::access("/sys/fs/selinux/enforce", F_OK) == 0; }

void check_lsm_supported(const spec::process& p, const std::string& mount_label) {
    if (!p.apparmor_profile.empty() && !apparmor_enabled())
        throw error("process.apparmorProfile " + quote(p.apparmor_profile) + ": AppArmor is not enabled on this host");
    if (!p.selinux_label.empty() && !selinux_enabled())
        throw error("process.selinuxLabel " + quote(p.selinux_label) + ": SELinux is not enabled on this host");
    if (!mount_label.empty() && !selinux_enabled())
        throw error("linux.mountLabel " + quote(mount_label) + ": SELinux is not enabled on this host");
}

void set_exec_labels(const spec::process& p) {
    if (p.apparmor_profile.empty() && p.selinux_label.empty()) return;
    procfs::handle proc = procfs::handle::open();
    if (!p.apparmor_profile.empty()) {
        with_context("apply AppArmor profile " + quote(p.apparmor_profile), [&] {
            // The module's own attribute directory where the kernel has one (5.8+: several
            // modules may be stacked), else the shared attr/exec.
            std::string command = "exec " + p.apparmor_profile;
            try {
                proc.write("thread-self/attr/apparmor/exec", command);
            } catch (const error& e) {
                if (e.code() != ENOENT) throw;
                proc.write("thread-self/attr/exec", command);
            }
        });
    }
    if (!p.selinux_label.empty())
        with_context("apply SELinux label " + quote(p.selinux_label), [&] { proc.write("thread-self/attr/exec", p.selinux_label); });
}

void set_keyring_label(const std::string& label) {
    if (label.empty()) return;
    with_context("SELinux keyring label " + quote(label),
                 [&] { procfs::handle::open().write("thread-self/attr/keycreate", label); });
}

std::string with_mount_label(const std::string& data, const std::string& fstype, const std::string& label) {
    // Filesystems with xattr labels of their own (and binds, which keep the source's) take none.
    if (label.empty() || fstype == "bind" || fstype == "proc" || fstype == "sysfs" || fstype == "cgroup" ||
        fstype == "cgroup2" || fstype == "overlay")
        return data;
    std::string option = "context=\"" + label + "\"";
    return data.empty() ? option : data + "," + option;
}

}  // namespace pieces::linux_
