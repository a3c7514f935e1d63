#include "core/container/features.h"

#include <sys/stat.h>

#include "core/base/procfs.h"
#include "core/linux/mount_options.h"
#include "core/linux/lsm.h"
#include "core/linux/seccomp.h"
#include "core/spec/config.h"

namespace pieces::container {

nlohmann::json features() {
    using json = nlohmann::json;
    json namespaces = json::array();
    for (spec::ns_type t : {spec::ns_type::cgroup, spec::ns_type::ipc, spec::ns_type::mount, spec::ns_type::network,
                            spec::ns_type::pid, spec::ns_type::user, spec::ns_type::uts, spec::ns_type::time}) {
        struct stat st {};
        // Only namespaces this kernel has.
        if (::stat((std::string("/proc/self/ns/") + spec::ns_proc_name(t)).c_str(), &st) == 0)
            namespaces.push_back(spec::ns_type_name(t));
    }
    json caps = json::array();
    for (int c = 0; c <= spec::last_known_capability(); ++c) caps.push_back(spec::capability_name(c));
    bool v1 = false, v2 = false;
    for (const auto& m : procfs::mountinfo()) {
        if (m.fstype == "cgroup") v1 = true;
        if (m.fstype == "cgroup2") v2 = true;
    }
    return json{
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", spec::oci_version},
        {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
        {"mountOptions", linux_::known_mount_options()},
        {"linux",
         {{"namespaces", namespaces},
          {"capabilities", caps},
          {"cgroup", {{"v1", v1}, {"v2", v2}, {"systemd", true}, {"systemdUser", false}, {"rdma", false}}},
          {"seccomp",
           {{"enabled", true},
            {"actions", linux_::seccomp_action_names()},
            {"operators", linux_::seccomp_operator_names()},
            {"archs", linux_::seccomp_arch_names()},
            {"knownFlags", linux_::seccomp_flag_names()},
            {"supportedFlags", linux_::seccomp_supported_flag_names()}}},
          // What this host can apply: a profile or label asked for elsewhere is refused.
          {"apparmor", {{"enabled", linux_::apparmor_enabled()}}},
          {"selinux", {{"enabled", linux_::selinux_enabled()}}},
          {"intelRdt", {{"enabled", false}}},
          {"mountExtensions", {{"idmap", {{"enabled", false}}}}}}},
        {"annotations", {{"org.pieces.puncker.version", PIECES_VERSION}}},
    };
}

}  // namespace pieces::container
