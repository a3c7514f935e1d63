#include "core/proc/init.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/linux/caps.h"
#include "core/linux/hooks.h"
#include "core/linux/lsm.h"
#include "core/linux/mounts.h"
#include "core/linux/namespaces.h"
#include "core/linux/process_setup.h"
#include "core/linux/rootfs.h"
#include "core/linux/seccomp.h"
#include "core/linux/terminal.h"

namespace pieces::proc {
namespace {

using spec::ns_type;

bool wants(const spec::config& cfg, ns_type t) { return cfg.linux.find(t) != nullptr; }

// Waits (once) until the parent has put us in our cgroups, then unshares the cgroup namespace,
// so that our cgroup is its root.
class cgroup_gate {
public:
    cgroup_gate(channel& chan, bool new_cgroupns) : chan_(chan), new_cgroupns_(new_cgroupns) {}
    void pass() {
        if (passed_) return;
        chan_.expect(msg::cgroup_joined);
        if (new_cgroupns_ && ::unshare(CLONE_NEWCGROUP) < 0) throw_errno("unshare cgroup namespace");
        passed_ = true;
    }

private:
    channel& chan_;
    bool new_cgroupns_;
    bool passed_ = false;
};

// Builds the filesystem the container will see, still from the host's view of paths.
void build_rootfs(const init_request& req, channel& chan, const std::string& state_json, linux_::rootfs_target& t) {
    const spec::config& cfg = *req.cfg;
    const spec::namespace_entry* cgroupns = cfg.linux.find(ns_type::cgroup);
    cgroup_gate gate(chan, cgroupns && cgroupns->path.empty());
    for (const auto& m : cfg.mounts) {
        // A cgroup mount shows the namespace's root cgroup: it needs us in place first.
        if (m.type == "cgroup" || m.type == "cgroup2") gate.pass();
        linux_::mount_entry(t, m);
    }
    linux_::create_devices(t, cfg);
    gate.pass();
    // prestart and createRuntime hooks run in the runtime's namespaces: the parent runs them.
    chan.send(msg::run_runtime_hooks);
    chan.expect(msg::runtime_hooks_done);
    with_context("createContainer hooks", [&] { linux_::run_hooks(cfg.hooks.create_container, state_json, "createContainer"); });
    linux_::mask_paths(t, cfg.linux.masked_paths);
    linux_::make_paths_readonly(t, cfg.linux.readonly_paths);
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
    std::vector<char*> out;
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

// Blocks until `start` writes its byte into the exec fifo. The fifo stays open (close-on-exec):
// start learns from it whether we reached execve.
void wait_for_start(borrowed_fd fifo) {
    char byte = 0;
    for (;;) {
        ssize_t n = ::read(fifo.get(), &byte, 1);
        if (n == 1) return;
        if (n < 0 && errno == EINTR) continue;
        throw_errno("read exec fifo");
    }
}

// A new network namespace has only "lo", and it is down: bring it up, as users expect.
void bring_up_loopback() {
    unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno("socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) throw_errno("get flags of", "lo");
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) throw_errno("bring up", "lo");
}

// Signals blocked or ignored by the runtime must not leak into the container's program.
void reset_signals() {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::signal(sig, SIG_DFL);
    }
}

}  // namespace

// Sets uid/gid and the capability sets, keeping capabilities across the uid change.
static void finalize_identity(const spec::process& p, bool setgroups_allowed) {
    if (p.capabilities) {
        if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) throw_errno("prctl PR_SET_KEEPCAPS");
        linux_::drop_bounding_set(p.capabilities->bounding);
    }
    linux_::switch_user(p.user, setgroups_allowed);
    if (p.capabilities) {
        if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) throw_errno("prctl PR_SET_KEEPCAPS");
        linux_::apply_capability_sets(*p.capabilities);
    }
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) throw_errno("prctl PR_SET_NO_NEW_PRIVS");
}

// Loads the seccomp filter; a notify listener fd goes to the parent, which hands it on.
static void load_filter(const linux_::seccomp_program& prog, channel& chan) {
    unique_fd listener = linux_::load_seccomp(prog);
    if (listener) chan.send_with_fd(msg::seccomp_listener, listener);
}

std::string prepare_process(const spec::process& p, const linux_::seccomp_program* seccomp, channel& chan,
                            int preserve_fds) {
    linux_::set_rlimits(p.rlimits);
    // Before the capabilities go: changing one's own exec label may need them.
    linux_::set_exec_labels(p);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the caps go.
    // With it, load it last, so the fewest of our own syscalls run under it.
    if (seccomp && !p.no_new_privileges) load_filter(*seccomp, chan);
    // Writes to gid_map were done by a privileged parent, so setgroups stays allowed.
    finalize_identity(p, true);
    if (seccomp && p.no_new_privileges) load_filter(*seccomp, chan);
    ::umask(p.user.umask.value_or(022));
    if (::chdir(p.cwd.c_str()) < 0) throw_errno("chdir to cwd", quote(p.cwd));
    // A cwd reached through a descriptor of the host ("/proc/self/fd/N") lands outside the root;
    // the kernel then reports the cwd as unreachable. Refuse to start the program there.
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd) || cwd[0] != '/')
        throw error("cwd " + quote(p.cwd) + " is outside the container's root");
    std::string exe = linux_::find_executable(p.args[0], p.env);
    // Nothing of ours may reach the program: every fd past stdio and the preserved ones closes at exec.
    if (::close_range(static_cast<unsigned>(3 + preserve_fds), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        throw_errno("close_range");
    return exe;
}

void container_init(const init_request& req, channel& chan, const std::string& state_json) {
    const spec::config& cfg = *req.cfg;
    const spec::process& p = *cfg.process;
    ::prctl(PR_SET_NAME, "puncker:init", 0, 0, 0);
    reset_signals();
    const spec::namespace_entry* net = cfg.linux.find(ns_type::network);
    if (net && net->path.empty()) bring_up_loopback();
    bool in_userns = wants(cfg, ns_type::user);
    linux_::rootfs_target t = linux_::prepare_rootfs(cfg, req.bundle, in_userns, wants(cfg, ns_type::cgroup));
    build_rootfs(req, chan, state_json, t);
    // The working directory is made when missing, as the other runtimes do.
    with_context("cwd " + quote(p.cwd), [&] { mkdir_all_in_root(t.root, p.cwd); });
    linux_::set_host_and_domain(cfg);
    linux_::apply_sysctls(cfg.linux.sysctl);
    linux_::enter_rootfs(t, req.no_pivot);
    if (cfg.root_readonly) linux_::make_root_readonly(t);

    if (p.terminal) with_context("set up console", [&] { linux_::setup_console(req.console_socket, p.console_size, true); });
    if (!req.no_new_keyring) {
        linux_::set_keyring_label(p.selinux_label);
        // A fresh session keyring, so the container does not share the caller's keys.
        if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, req.id.c_str()) < 0 && errno != ENOSYS && errno != EPERM)
            throw_errno("join session keyring");
    }
    std::string exe = prepare_process(p, req.seccomp, chan, req.preserve_fds);

    // Setup is over: from here the init outlives the runtime process that made it. Cleared
    // before "ready", since the parent may exit as soon as it reads that.
    ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    chan.send(msg::ready);
    chan.close();
    wait_for_start(req.exec_fifo);
    try {
        nlohmann::json started = nlohmann::json::parse(state_json);
        started["status"] = "created";
        linux_::run_hooks(cfg.hooks.start_container, started.dump(), "startContainer");
        auto argv = c_strings(p.args);
        auto envp = c_strings(p.env);
        ::execve(exe.c_str(), argv.data(), envp.data());
        throw_errno("exec", quote(exe));
    } catch (const std::exception& e) {
        // `start` is waiting on the fifo: what is left in it when we are gone is the error.
        std::string msg = e.what();
        ssize_t n = ::write(req.exec_fifo.get(), msg.data(), msg.size());
        (void)n;
        ::_exit(127);
    }
}

}  // namespace pieces::proc
