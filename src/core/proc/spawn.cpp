#include "core/proc/spawn.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/linux/hooks.h"
#include "core/linux/namespaces.h"
#include "core/linux/process_setup.h"
#include "core/proc/channel.h"
#include "core/proc/init.h"

namespace pieces::proc {
namespace {

using spec::ns_type;

// clone(2) without a new stack behaves like fork, with namespace flags.
pid_t raw_clone(unsigned long flags) {
    return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

// The namespaces the config asks to create (not join), as CLONE_NEW* flags.
unsigned long new_namespace_flags(const spec::config& cfg) {
    unsigned long flags = 0;
    for (const auto& n : cfg.linux.namespaces)
        if (n.path.empty()) flags |= static_cast<unsigned long>(spec::ns_clone_flag(n.type));
    return flags;
}

// Runs `fn` in a cloned child: no exception crosses back; an error goes to the parent over the
// channel (or to stderr once the channel is closed) and the child exits.
template <typename Fn>
[[noreturn]] void run_child(channel& chan, Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        const auto* err = dynamic_cast<const error*>(&e);
        int code = err ? err->code() : 0;
        if (chan.fd() >= 0) {
            try {
                chan.send(msg::error, e.what(), code);
            } catch (...) {
            }
        } else {
            std::fprintf(stderr, "puncker: %s\n", e.what());
        }
    }
    ::_exit(127);
}

// The child's half of the protocol up to "go". In the slow path (namespaces to join, or a new
// time namespace) this process joins and unshares, then forks the real init as our parent's
// child and exits.
void child_prelude(const init_request& req, channel& chan, bool slow, const std::vector<linux_::ns_handle>& joins) {
    const spec::config& cfg = *req.cfg;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    // Until it execs, this process is the puncker binary: processes that can see it (another
    // container sharing the pid namespace it joins) must not reach it through /proc/PID/exe
    // (CVE-2019-5736). Not dumpable means that needs CAP_SYS_PTRACE; execve resets it.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    unsigned long flags = new_namespace_flags(cfg);
    if (slow) {
        ::prctl(PR_SET_NAME, "puncker:join", 0, 0, 0);
        linux_::join_namespaces(joins);
        // The namespace files are host descriptors: none may reach the container.
        for (const auto& j : joins) ::close(j.fd.get());
        if (flags & CLONE_NEWUSER) {
            if (::unshare(CLONE_NEWUSER) < 0) throw_errno("unshare user namespace");
            chan.send(msg::need_id_maps);
            chan.expect(msg::id_maps_done);
        }
        unsigned long rest = flags & ~static_cast<unsigned long>(CLONE_NEWUSER | CLONE_NEWCGROUP);
        if (rest && ::unshare(static_cast<int>(rest)) < 0) throw_errno("unshare namespaces");
        if (flags & CLONE_NEWTIME) linux_::write_time_offsets(cfg.linux.time_offsets);
        // A new or joined pid/time namespace takes effect for children only: fork the init.
        pid_t init = raw_clone(CLONE_PARENT);
        if (init < 0) throw_errno("clone init");
        if (init > 0) {
            chan.send(msg::init_pid, std::to_string(init));
            ::_exit(0);
        }
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    }
}

}  // namespace

pid_t spawn_init(const init_request& req, const spawn_hooks& hooks) {
    const spec::config& cfg = *req.cfg;
    auto [parent_end, child_end] = channel::make_pair();
    std::vector<linux_::ns_handle> joins = linux_::open_joined_namespaces(cfg.linux);
    unsigned long flags = new_namespace_flags(cfg);
    bool slow = !joins.empty() || (flags & CLONE_NEWTIME);
    // The cgroup namespace is unshared by the init once it sits in its cgroup, so that the
    // cgroup becomes the namespace's root.
    unsigned long clone_flags = slow ? 0 : (flags & ~static_cast<unsigned long>(CLONE_NEWCGROUP));

    pid_t child = raw_clone(clone_flags);
    if (child < 0) throw_errno("clone");
    if (child == 0) {
        parent_end.close();
        run_child(child_end, [&] {
            // Only what the init needs crosses over: above all not the state directory's lock.
            std::vector<int> keep = {0, 1, 2, child_end.fd(), req.exec_fifo.get(), req.console_socket.get()};
            for (int fd = 3; fd < 3 + req.preserve_fds; ++fd) keep.push_back(fd);
            for (const auto& j : joins) keep.push_back(j.fd.get());
            close_fds_except(keep);
            child_prelude(req, child_end, slow, joins);
            std::string state = child_end.expect(msg::go).payload;
            if (flags & CLONE_NEWUSER) {
                if (::setresgid(0, 0, 0) < 0) throw_errno("setresgid 0 in user namespace");
                if (::setresuid(0, 0, 0) < 0) throw_errno("setresuid 0 in user namespace");
            }
            container_init(req, child_end, state);
        });
    }
    child_end.close();

    pid_t init = child;
    auto kill_children = [&] {
        if (init != child) ::kill(init, SIGKILL);
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        if (init != child) ::waitpid(init, nullptr, 0);
    };
    try {
        if (slow) {
            for (;;) {
                message m = parent_end.receive();
                if (m.type == msg::need_id_maps) {
                    linux_::write_id_mappings(child, cfg.linux);
                    parent_end.send(msg::id_maps_done);
                } else if (m.type == msg::init_pid) {
                    init = static_cast<pid_t>(std::stol(m.payload));
                    ::waitpid(child, nullptr, 0);
                    break;
                } else if (m.type == msg::error) {
                    throw error(m.payload, m.err);
                } else {
                    throw error(std::string("channel: expected need-id-maps or init-pid, got ") + msg_name(m.type));
                }
            }
        } else if (flags & CLONE_NEWUSER) {
            linux_::write_id_mappings(child, cfg.linux);
        }
        // The first cgroup migration waits for an RCU grace period: let the init mount its
        // filesystems meanwhile, and tell it when it is in place.
        std::string state = hooks.state_json(init);
        parent_end.send(msg::go, state);
        hooks.join_cgroup(init);
        if (cfg.process->oom_score_adj) linux_::set_oom_score_adj(std::to_string(init), *cfg.process->oom_score_adj);
        parent_end.send(msg::cgroup_joined);
        parent_end.expect(msg::run_runtime_hooks);
        linux_::run_hooks(cfg.hooks.prestart, state, "prestart");
        linux_::run_hooks(cfg.hooks.create_runtime, state, "createRuntime");
        parent_end.send(msg::runtime_hooks_done);
        unique_fd listener;
        message m = parent_end.receive(&listener);
        if (m.type == msg::seccomp_listener) {
            if (!listener) throw error("channel: seccomp-listener came without a descriptor");
            linux_::send_seccomp_listener(*req.seccomp, listener, init, state);
            listener.reset();
            m = parent_end.receive();
        }
        if (m.type == msg::error) throw error(m.payload, m.err);
        if (m.type != msg::ready) throw error(std::string("channel: expected ready, got ") + msg_name(m.type));
    } catch (...) {
        kill_children();
        throw;
    }
    return init;
}

}  // namespace pieces::proc
