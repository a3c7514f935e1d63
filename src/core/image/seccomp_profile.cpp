#include "core/image/seccomp_profile.h"

#include <sched.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/linux/seccomp.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

// The profile is an allowlist: what is not named below gets ENOSYS, so a libc that tries a
// syscall newer than this table (clone3, a future one) falls back to the older call.
// Syscalls that reach the kernel's or the host's global state get EPERM, unless the
// container holds the capability that governs them.

// Allowed to every container.
constexpr const char* allowed[] = {
    // files and descriptors
    "read write open openat openat2 creat close close_range lseek pread64 pwrite64 readv writev preadv pwritev "
    "preadv2 pwritev2 access faccessat faccessat2 stat fstat lstat newfstatat statx statfs fstatfs dup dup2 dup3 "
    "fcntl flock fsync fdatasync syncfs sync sync_file_range truncate ftruncate fallocate fadvise64 readahead "
    "getdents getdents64 getcwd chdir fchdir rename renameat renameat2 mkdir mkdirat rmdir link linkat unlink "
    "unlinkat symlink symlinkat readlink readlinkat chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat "
    "umask mknod mknodat utime utimes utimensat futimesat sendfile splice tee vmsplice copy_file_range ioctl",
    "setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr "
    "lremovexattr fremovexattr",
    // waiting on descriptors, and descriptors that are not files
    "select pselect6 poll ppoll epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 "
    "inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark pipe pipe2 eventfd eventfd2 "
    "signalfd signalfd4 timerfd_create timerfd_settime timerfd_gettime memfd_create",
    "io_setup io_destroy io_getevents io_pgetevents io_submit io_cancel",
    // memory (NUMA policy of the process's own memory included)
    "brk mmap munmap mremap mprotect msync mincore madvise mlock mlock2 munlock mlockall munlockall "
    "remap_file_pages pkey_mprotect pkey_alloc pkey_free membarrier memfd_secret map_shadow_stack cachestat "
    "get_mempolicy set_mempolicy set_mempolicy_home_node mbind",
    // processes, threads, scheduling
    "fork vfork execve execveat exit exit_group wait4 waitid kill tkill tgkill getpid getppid gettid "
    "set_tid_address getpgid setpgid getpgrp getsid setsid prctl arch_prctl seccomp rseq set_robust_list "
    "get_robust_list futex futex_waitv futex_wake futex_wait futex_requeue sched_yield sched_setparam "
    "sched_getparam sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min "
    "sched_rr_get_interval sched_setaffinity sched_getaffinity sched_setattr sched_getattr getpriority "
    "setpriority ioprio_get ioprio_set getcpu getrlimit setrlimit prlimit64 getrusage times pidfd_open "
    "pidfd_send_signal pidfd_getfd process_mrelease capget capset set_thread_area get_thread_area modify_ldt "
    "restart_syscall landlock_create_ruleset landlock_add_rule landlock_restrict_self",
    "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend "
    "rt_tgsigqueueinfo sigaltstack pause alarm getitimer setitimer nanosleep clock_nanosleep",
    "getuid geteuid getgid getegid getresuid getresgid getgroups setuid setgid setreuid setregid setresuid "
    "setresgid setgroups setfsuid setfsgid",
    // randomness, time as read (adjtimex only reads without CAP_SYS_TIME: the kernel checks), the system's identity
    "getrandom time gettimeofday clock_gettime clock_getres adjtimex timer_create timer_settime timer_gettime "
    "timer_getoverrun timer_delete uname sysinfo",
    "shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl mq_open mq_unlink "
    "mq_timedsend mq_timedreceive mq_notify mq_getsetattr",
    "socketpair connect accept accept4 bind listen getsockname getpeername setsockopt getsockopt sendto recvfrom "
    "sendmsg recvmsg sendmmsg recvmmsg shutdown",
    // the 32-bit ABIs' own names (i386 under x86_64, arm under aarch64)
    "_llseek _newselect chown32 fchown32 lchown32 fcntl64 fstat64 fstatat64 lstat64 stat64 statfs64 fstatfs64 "
    "ftruncate64 truncate64 fadvise64_64 getegid32 geteuid32 getgid32 getuid32 getgroups32 setgroups32 "
    "getresgid32 getresuid32 setresgid32 setresuid32 setregid32 setreuid32 setgid32 setuid32 setfsgid32 "
    "setfsuid32 mmap2 sendfile64 ipc socketcall ugetrlimit waitpid nice oldfstat oldlstat oldstat olduname "
    "oldolduname readdir sigaction signal sigpending sigprocmask sigreturn sigsuspend sgetmask ssetmask",
    "clock_gettime64 clock_getres_time64 clock_nanosleep_time64 futex_time64 io_pgetevents_time64 "
    "mq_timedreceive_time64 mq_timedsend_time64 ppoll_time64 pselect6_time64 recvmmsg_time64 "
    "rt_sigtimedwait_time64 sched_rr_get_interval_time64 semtimedop_time64 timer_gettime64 timer_settime64 "
    "timerfd_gettime64 timerfd_settime64 utimensat_time64",
    "arm_fadvise64_64 arm_sync_file_range sync_file_range2 recv send cacheflush set_tls breakpoint",
};

// Allowed only to a container holding the capability (as the kernel would ask for it anyway,
// so the filter narrows what a container without it can reach). A name may be under several.
struct gated {
    const char* cap;
    const char* names;
};
constexpr gated by_capability[] = {
    {"CAP_SYS_ADMIN", "mount umount umount2 pivot_root move_mount open_tree fsopen fsmount fsconfig fspick "
                      "mount_setattr quotactl quotactl_fd name_to_handle_at lookup_dcookie fanotify_init sethostname "
                      "setdomainname setns bpf perf_event_open"},
    {"CAP_SYS_BOOT", "reboot"},
    {"CAP_SYS_MODULE", "init_module finit_module delete_module"},
    {"CAP_SYS_PACCT", "acct"},
    {"CAP_SYS_PTRACE", "kcmp process_vm_readv process_vm_writev process_madvise userfaultfd"},
    {"CAP_SYS_RAWIO", "iopl ioperm"},
    {"CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64 clock_adjtime clock_adjtime64"},
    {"CAP_SYS_TTY_CONFIG", "vhangup"},
    {"CAP_SYS_NICE", "migrate_pages move_pages"},
    {"CAP_SYS_CHROOT", "chroot"},
    {"CAP_DAC_READ_SEARCH", "open_by_handle_at"},
    {"CAP_SYSLOG", "syslog"},
    {"CAP_BPF", "bpf"},
    {"CAP_PERFMON", "perf_event_open"},
};

// Never allowed: the key store is not namespaced, kexec and swap act on the whole machine,
// io_uring has been a steady source of kernel bugs and bypasses this filter's view of calls.
constexpr const char* denied = "add_key keyctl request_key kexec_load kexec_file_load swapon swapoff io_uring_setup "
                               "io_uring_enter io_uring_register";

// Obsolete or never implemented: named so the profile accounts for every syscall, with the
// default's ENOSYS.
constexpr const char* obsolete = "_sysctl sysfs ustat uselib nfsservctl create_module get_kernel_syms query_module vm86 "
                                 "vm86old bdflush idle afs_syscall tuxcall security vserver getpmsg putpmsg epoll_ctl_old "
                                 "epoll_wait_old break ftime gtty lock mpx prof profil stty ulimit";

// The namespace flags of clone and unshare: a container without CAP_SYS_ADMIN makes none.
constexpr uint64_t namespace_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */};
// personality(2) values a program may ask for: Linux, 32-bit uname, a 2.6-style version,
// no address randomisation for itself, and the query. Other values get ENOSYS.
constexpr uint64_t personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0x40000, 0x40008, 0xffffffff};
constexpr uint64_t af_vsock = 40;

#if defined(__s390x__)
constexpr int clone_flags_arg = 1;  // s390 swaps clone's first two arguments
#else
constexpr int clone_flags_arg = 0;
#endif

std::vector<std::string> words(const char* text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

json rule(const std::vector<std::string>& names, const char* action, std::optional<unsigned> errno_ret = {}, json args = nullptr) {
    json r = {{"names", names}, {"action", action}};
    if (errno_ret) r["errnoRet"] = static_cast<unsigned>(*errno_ret);
    if (!args.is_null()) r["args"] = args;
    return r;
}

json arg(int index, uint64_t value, const char* op) { return {{"index", index}, {"value", value}, {"op", op}}; }

// (argument & mask) == value.
json masked(int index, uint64_t mask, uint64_t value) {
    return {{"index", index}, {"value", mask}, {"valueTwo", value}, {"op", "SCMP_CMP_MASKED_EQ"}};
}

// clone/unshare: without namespace flags allowed; each namespace flag refused with EPERM.
void namespace_rules(json& rules, const std::string& name, int flags_arg) {
    uint64_t mask = 0;
    for (uint64_t f : namespace_flags) mask |= f;
    rules.push_back(rule({name}, "SCMP_ACT_ALLOW", {}, json::array({masked(flags_arg, mask, 0)})));
    for (uint64_t f : namespace_flags) rules.push_back(rule({name}, "SCMP_ACT_ERRNO", EPERM, json::array({masked(flags_arg, f, f)})));
}

const char* go_arch() {
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
#error "pieces: name this architecture's seccomp architectures in seccomp_profile.cpp"
#endif
}

[[noreturn]] void fail(const std::string& where, const std::string& field, const std::string& what) {
    throw error(where + ": " + field + ": " + what);
}

std::vector<std::string> string_array(const json& v, const std::string& where, const std::string& field) {
    if (!v.is_array()) fail(where, field, "expected an array of strings");
    std::vector<std::string> out;
    for (const json& s : v) {
        if (!s.is_string()) fail(where, field, "expected an array of strings");
        out.push_back(s.get<std::string>());
    }
    return out;
}

// Whether a Docker rule's includes/excludes keep it for this container.
bool rule_applies(const json& r, const std::vector<std::string>& caps, kernel_version kernel, const std::string& where,
                  const std::string& field) {
    for (const char* part : {"includes", "excludes"}) {
        auto it = r.find(part);
        if (it == r.end() || it->is_null()) continue;
        std::string f = field + "." + part;
        if (!it->is_object()) fail(where, f, "expected an object");
        bool include = std::string(part) == "includes";
        for (const auto& [key, value] : it->items()) {
            if (key == "caps") {
                for (const auto& c : string_array(value, where, f + ".caps"))
                    if (has(caps, c) != include) return false;
            } else if (key == "arches") {
                auto arches = string_array(value, where, f + ".arches");
                if (!arches.empty() && has(arches, go_arch()) != include) return false;
            } else if (key == "minKernel" && include) {
                if (!value.is_string()) fail(where, f + ".minKernel", "expected a string such as \"4.8\"");
                kernel_version min = kernel_version::parse(value.get<std::string>());
                if (min.major == 0) fail(where, f + ".minKernel", "expected a version such as \"4.8\", not " + value.dump());
                if (!kernel.at_least(min)) return false;
            } else {
                fail(where, f + "." + key, "not supported (pieces knows caps, arches and, in includes, minKernel)");
            }
        }
    }
    return true;
}

}  // namespace

kernel_version kernel_version::parse(const std::string& release) {
    kernel_version v;
    if (std::sscanf(release.c_str(), "%d.%d", &v.major, &v.minor) != 2) return {};
    return v;
}

kernel_version kernel_version::running() {
    struct utsname u {};
    if (::uname(&u) < 0) return {};
    return parse(u.release);
}

seccomp_choice seccomp_choice::parse(const std::string& value) {
    seccomp_choice c;
    if (value == "unconfined") {
        c.mode = kind::unconfined;
        return c;
    }
    std::string where = "--security-opt seccomp=" + value;
    if (value.empty()) throw error(where + ": expected unconfined or the path of a profile file");
    c.mode = kind::file;
    c.path = value;
    std::string text;
    try {
        text = read_file(value);
    } catch (const std::exception& e) {
        throw error(where + ": " + e.what());
    }
    c.profile = json::parse(text, nullptr, false);
    if (c.profile.is_discarded()) throw error(where + ": not JSON");
    if (!c.profile.is_object()) throw error(where + ": expected a JSON object (a seccomp profile)");
    return c;
}

std::vector<std::string> seccomp_architectures() {
#if defined(__x86_64__)
    return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
    return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#elif defined(__powerpc64__)
    return {"SCMP_ARCH_PPC64LE"};
#elif defined(__s390x__)
    return {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
#else
    return {"SCMP_ARCH_RISCV64"};
#endif
}

json default_seccomp_profile(const std::vector<std::string>& caps, kernel_version kernel) {
    std::vector<std::string> allow, refuse = words(denied);
    for (const char* group : allowed)
        for (auto& n : words(group)) allow.push_back(n);
    for (const auto& g : by_capability)
        for (auto& n : words(g.names))
            if (has(caps, g.cap)) allow.push_back(n);
    for (const auto& g : by_capability)
        for (auto& n : words(g.names))
            if (!has(allow, n) && !has(refuse, n)) refuse.push_back(n);
    // Before 4.8 a traced process could change a syscall after seccomp had checked it.
    if (kernel.at_least({4, 8}) || has(caps, "CAP_SYS_PTRACE")) allow.push_back("ptrace");
    else refuse.push_back("ptrace");

    json rules = json::array();
    rules.push_back(rule(allow, "SCMP_ACT_ALLOW"));
    rules.push_back(rule(refuse, "SCMP_ACT_ERRNO", EPERM));
    if (has(caps, "CAP_SYS_ADMIN")) {
        rules.push_back(rule({"clone", "clone3", "unshare"}, "SCMP_ACT_ALLOW"));
    } else {
        namespace_rules(rules, "clone", clone_flags_arg);
        namespace_rules(rules, "unshare", 0);
        // Its flags sit in a struct the filter cannot read: ENOSYS makes libc use clone.
        rules.push_back(rule({"clone3"}, "SCMP_ACT_ERRNO", ENOSYS));
    }
    for (uint64_t p : personalities)
        rules.push_back(rule({"personality"}, "SCMP_ACT_ALLOW", {}, json::array({arg(0, p, "SCMP_CMP_EQ")})));
    // vsock reaches the hypervisor or the host, not the container's network.
    rules.push_back(rule({"socket"}, "SCMP_ACT_ALLOW", {}, json::array({arg(0, af_vsock, "SCMP_CMP_NE")})));
    rules.push_back(rule({"socket"}, "SCMP_ACT_ERRNO", EPERM, json::array({arg(0, af_vsock, "SCMP_CMP_EQ")})));
    rules.push_back(rule(words(obsolete), "SCMP_ACT_ERRNO", ENOSYS));
    return {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", static_cast<unsigned>(ENOSYS)}, {"architectures", seccomp_architectures()},
            {"syscalls", rules}};
}

json translate_seccomp_profile(const json& profile, const std::vector<std::string>& caps, const std::string& where,
                               kernel_version kernel) {
    if (!profile.is_object()) throw error(where + ": expected a JSON object (a seccomp profile)");
    json out = json::object();
    for (const auto& [key, value] : profile.items()) {
        if (key == "defaultAction" || key == "defaultErrnoRet" || key == "flags" || key == "listenerPath" ||
            key == "listenerMetadata") {
            out[key] = value;
        } else if (key == "architectures") {
            out[key] = string_array(value, where, key);
        } else if (key != "archMap" && key != "syscalls") {
            fail(where, key, "not a field of a seccomp profile that pieces knows");
        }
    }
    if (!out.contains("defaultAction")) fail(where, "defaultAction", "missing");
    if (profile.contains("archMap") && !profile["archMap"].is_null()) {
        if (out.contains("architectures")) fail(where, "archMap", "give architectures or archMap, not both");
        const json& map = profile["archMap"];
        if (!map.is_array()) fail(where, "archMap", "expected an array");
        // The entry for this machine's architecture, with the ABIs its kernel also runs.
        std::string native = seccomp_architectures().front();
        json arches = json::array();
        for (size_t i = 0; i < map.size(); ++i) {
            std::string f = "archMap[" + std::to_string(i) + "]";
            if (!map[i].is_object() || !map[i].contains("architecture") || !map[i]["architecture"].is_string())
                fail(where, f, "expected {\"architecture\": ..., \"subArchitectures\": [...]}");
            if (map[i]["architecture"] != native) continue;
            arches.push_back(native);
            if (map[i].contains("subArchitectures") && !map[i]["subArchitectures"].is_null())
                for (auto& s : string_array(map[i]["subArchitectures"], where, f + ".subArchitectures")) arches.push_back(s);
        }
        out["architectures"] = arches;
    }
    json rules = json::array();
    if (profile.contains("syscalls") && !profile["syscalls"].is_null()) {
        const json& calls = profile["syscalls"];
        if (!calls.is_array()) fail(where, "syscalls", "expected an array");
        for (size_t i = 0; i < calls.size(); ++i) {
            std::string f = "syscalls[" + std::to_string(i) + "]";
            const json& c = calls[i];
            if (!c.is_object()) fail(where, f, "expected an object");
            json r = json::object();
            for (const auto& [key, value] : c.items()) {
                if (key == "names") r["names"] = string_array(value, where, f + ".names");
                else if (key == "name") {
                    if (!value.is_string()) fail(where, f + ".name", "expected a string");
                    r["names"] = json::array({value});
                } else if (key == "action" || key == "errnoRet" || key == "args") r[key] = value;
                else if (key != "includes" && key != "excludes" && key != "comment")
                    fail(where, f + "." + key, "not a field of a syscall rule that pieces knows");
            }
            if (c.contains("name") && c.contains("names")) fail(where, f, "give name or names, not both");
            if (!r.contains("names")) fail(where, f + ".names", "missing");
            if (!r.contains("action")) fail(where, f + ".action", "missing");
            if (rule_applies(c, caps, kernel, where, f)) rules.push_back(r);
        }
    }
    out["syscalls"] = rules;
    // As written to config.json and read back: numbers the file wrote as 1 are unsigned there.
    return json::parse(out.dump());
}

std::optional<json> container_seccomp(const seccomp_choice& choice, const std::vector<std::string>& caps, bool privileged) {
    switch (choice.mode) {
    case seccomp_choice::kind::unconfined:
        return std::nullopt;
    case seccomp_choice::kind::builtin:
        if (privileged) return std::nullopt;
        return default_seccomp_profile(caps);
    case seccomp_choice::kind::file:
        break;
    }
    std::string where = "--security-opt seccomp=" + choice.path;
    json oci = translate_seccomp_profile(choice.profile, caps, where);
    // Compiled once here, so what the runtime would refuse is refused before anything is made.
    try {
        linux_::compile_seccomp(oci);
    } catch (const std::exception& e) {
        throw error(where + ": " + e.what());
    }
    return oci;
}

}  // namespace pieces::image
