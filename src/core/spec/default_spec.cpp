#include "core/spec/default_spec.h"

#include <unistd.h>

#include "core/spec/config.h"

namespace pieces::spec {

nlohmann::json default_config(bool rootless) {
    using json = nlohmann::json;
    json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
    json devpts_opts = json::array({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"});
    if (!rootless) devpts_opts.push_back("gid=5");  // gid 5 (tty) is unmapped in a rootless userns
    json sys = rootless
                   ? json{{"destination", "/sys"}, {"type", "none"}, {"source", "/sys"},
                          {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}}
                   : json{{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
                          {"options", {"nosuid", "noexec", "nodev", "ro"}}};
    json cfg = {
        {"ociVersion", oci_version},
        {"process",
         {{"terminal", true},
          {"user", {{"uid", 0}, {"gid", 0}}},
          {"args", {"sh"}},
          {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
          {"cwd", "/"},
          {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
          {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
          {"noNewPrivileges", true}}},
        {"root", {{"path", "rootfs"}, {"readonly", true}}},
        {"hostname", "puncker"},
        {"mounts",
         {
             {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
             {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
              {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
             {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"}, {"options", devpts_opts}},
             {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
              {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
             {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"},
              {"options", {"nosuid", "noexec", "nodev"}}},
             sys,
             {{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
              {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
         }},
        {"linux",
         {{"namespaces", json::array()},
          {"maskedPaths",
           {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
          {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
    };
    json& ns = cfg["linux"]["namespaces"];
    for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
        if (rootless && std::string_view(t) == "network") continue;  // no way to wire it up unprivileged
        ns.push_back({{"type", t}});
    }
    if (rootless) {
        ns.push_back({{"type", "user"}});
        cfg["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", ::getuid()}, {"size", 1}}};
        cfg["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", ::getgid()}, {"size", 1}}};
    } else {
        cfg["linux"]["resources"] = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
    }
    return cfg;
}

}  // namespace pieces::spec
