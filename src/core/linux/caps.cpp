#include "core/linux/caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::linux_ {

uint64_t cap_mask(const std::vector<int>& caps) {
    uint64_t m = 0;
    for (int c : caps) m |= uint64_t{1} << c;
    return m;
}

int kernel_last_cap() {
    static int last = [] {
        try {
            return std::stoi(read_file("/proc/sys/kernel/cap_last_cap"));
        } catch (...) {
            return spec::last_known_capability();
        }
    }();
    return last;
}

void drop_bounding_set(const std::vector<int>& keep) {
    uint64_t k = cap_mask(keep);
    for (int c = 0; c <= kernel_last_cap(); ++c) {
        if (k & (uint64_t{1} << c)) continue;
        if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            throw_errno("drop from bounding set", spec::capability_name(c));
    }
}

void apply_capability_sets(const spec::capabilities& caps) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    uint64_t eff = cap_mask(caps.effective), perm = cap_mask(caps.permitted), inh = cap_mask(caps.inheritable);
    for (int i = 0; i < 2; ++i) {
        data[i].effective = static_cast<uint32_t>(eff >> (32 * i));
        data[i].permitted = static_cast<uint32_t>(perm >> (32 * i));
        data[i].inheritable = static_cast<uint32_t>(inh >> (32 * i));
    }
    if (::syscall(SYS_capset, &header, data) < 0) throw_errno("capset");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) throw_errno("clear ambient capabilities");
    for (int c : caps.ambient) {
        // The kernel refuses an ambient capability that is not both permitted and inheritable.
        // Configs routinely list ambient caps without inheritable ones (runc's default spec does),
        // and runtimes skip those rather than fail: so do we.
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM && errno != EINVAL)
            throw_errno("raise ambient capability", spec::capability_name(c));
    }
}

}  // namespace pieces::linux_
