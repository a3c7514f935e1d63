#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/socket.h"
#include "core/cgroup/cgroup.h"
#include "core/container/internal.h"
#include "core/linux/lsm.h"
#include "core/linux/namespaces.h"
#include "core/linux/sealed_exe.h"
#include "core/linux/seccomp.h"
#include "core/linux/seccomp_cache.h"
#include "core/linux/terminal.h"
#include "core/proc/channel.h"
#include "core/proc/init.h"

namespace pieces::container {
namespace {

using spec::ns_type;

// The order namespaces are joined in: user first (it grants the rest), mount last (it changes
// our root, and the paths of the others are opened already).
constexpr ns_type join_order[] = {ns_type::user, ns_type::ipc, ns_type::uts,  ns_type::network,
                                  ns_type::pid,  ns_type::cgroup, ns_type::time, ns_type::mount};

// The init's namespaces that differ from ours, opened for setns.
std::vector<linux_::ns_handle> container_namespaces(pid_t init) {
    std::vector<linux_::ns_handle> out;
    for (ns_type t : join_order) {
        std::string theirs = "/proc/" + std::to_string(init) + "/ns/" + spec::ns_proc_name(t);
        std::string ours = std::string("/proc/self/ns/") + spec::ns_proc_name(t);
        struct stat a {}, b {};
        if (::stat(theirs.c_str(), &a) < 0) continue;  // a kind this kernel lacks
        if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
        out.push_back({t, open_path(theirs, O_RDONLY)});
    }
    return out;
}

spec::process process_for(const exec_options& o, const saved_state& s) {
    if (!o.process_file.empty()) {
        nlohmann::json j = nlohmann::json::parse(read_file(o.process_file), nullptr, false);
        if (j.is_discarded()) throw error(quote(o.process_file) + ": invalid JSON");
        return with_context(quote(o.process_file), [&] { return spec::parse_process_json(j, "process"); });
    }
    if (o.args.empty()) throw error("exec needs a command (or --process)");
    spec::process p = spec::parse_process_json(s.exec_defaults.value("process", nlohmann::json::object()).empty()
                                                   ? nlohmann::json{{"args", {"sh"}}, {"cwd", "/"}}
                                                   : s.exec_defaults["process"],
                                               "process");
    p.args = o.args;
    p.terminal = o.tty;
    for (const std::string& kv : o.env) {
        std::string key = kv.substr(0, kv.find('='));
        std::erase_if(p.env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
        p.env.push_back(kv);
    }
    if (!o.cwd.empty()) p.cwd = o.cwd;
    if (!o.user.empty()) {
        size_t colon = o.user.find(':');
        try {
            p.user.uid = static_cast<uid_t>(std::stoul(o.user.substr(0, colon)));
            p.user.gid = colon == std::string::npos ? 0 : static_cast<gid_t>(std::stoul(o.user.substr(colon + 1)));
        } catch (const std::exception&) {
            throw error("--user " + quote(o.user) + ": expected uid[:gid]");
        }
        p.user.additional_gids.clear();
    }
    for (unsigned g : o.additional_gids) p.user.additional_gids.push_back(g);
    if (!o.caps.empty()) {
        if (!p.capabilities) p.capabilities = spec::capabilities{};
        for (const std::string& name : o.caps) {
            int cap = spec::capability_from_name(name);
            if (cap < 0) throw error("--cap: unknown capability " + quote(name));
            for (auto* set : {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted,
                              &p.capabilities->inheritable, &p.capabilities->ambient})
                set->push_back(cap);
        }
    }
    if (o.no_new_privs) p.no_new_privileges = true;
    if (!o.apparmor_profile.empty()) p.apparmor_profile = o.apparmor_profile;
    if (!o.process_label.empty()) p.selinux_label = o.process_label;
    return p;
}

// The container's cgroup directories with --cgroup's sub-cgroups put in: "path" for every
// hierarchy, "cpu,memory:path" for the v1 hierarchies of those controllers. The sub-cgroups
// must exist already (they are the caller's to make and remove).
std::vector<std::string> exec_cgroup_dirs(const cgroup::group& container, const std::vector<std::string>& specs) {
    std::vector<std::string> dirs = container.dirs();
    if (specs.empty()) return dirs;
    std::map<std::string, std::string> by_controller = container.v1_dirs();
    for (const std::string& spec : specs) {
        size_t colon = spec.find(':');
        std::string sub = colon == std::string::npos ? spec : spec.substr(colon + 1);
        while (!sub.empty() && sub.front() == '/') sub.erase(0, 1);
        std::vector<std::string> parts = split_components(sub);
        if (parts.empty() || std::count(parts.begin(), parts.end(), "..") > 0)
            throw error("--cgroup " + quote(spec) + ": expected [controller[,controller]:]path below the container's cgroup");
        std::set<std::string> chosen;
        if (colon == std::string::npos) {
            chosen.insert(dirs.begin(), dirs.end());
        } else {
            std::stringstream names(spec.substr(0, colon));
            std::string name;
            while (std::getline(names, name, ',')) {
                auto it = by_controller.find(name);
                if (name.empty() || it == by_controller.end())
                    throw error("--cgroup " + quote(spec) + ": no cgroup v1 hierarchy has controller " + quote(name));
                chosen.insert(it->second);
            }
        }
        for (std::string& dir : dirs) {
            if (!chosen.count(dir)) continue;
            std::string target = dir + "/" + sub;
            struct stat st {};
            if (::stat(target.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
                throw error("--cgroup " + quote(spec) + ": no sub-cgroup " + quote(target));
            dir = target;
        }
    }
    return dirs;
}

pid_t clone_process(unsigned long flags) {
    return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

}  // namespace

int exec(const exec_options& o) {
    return with_context("exec in container " + o.id, [&]() -> int {
        saved_state s;
        {
            state_dir dir = state_dir::open(o.root, o.id, false);
            s = dir.load();
            status st = dir.current_status(s);
            if (st == status::paused && !o.ignore_paused) throw error("container is paused");
            if (st != status::running && st != status::paused) throw error("container not running");
        }
        spec::process p = process_for(o, s);
        // Detached, a terminal needs somewhere to go; in the foreground it comes back to us and
        // is relayed to our own stdio, as `run` does.
        if (p.terminal && o.console_socket.empty() && o.detach) throw error("--tty with --detach needs a --console-socket");
        linux_::check_lsm_supported(p, "");
        std::vector<std::string> cgroup_dirs = exec_cgroup_dirs(cgroup::group(s.cgroup_dirs), o.sub_cgroups);
        // The process is visible inside the container before it execs: from here on, run from
        // a sealed copy of ourselves (CVE-2019-5736). Everything above is re-done in the copy,
        // and none of it had effects.
        linux_::ensure_running_sealed();
        linux_::seccomp_program seccomp;
        const linux_::seccomp_program* filter = nullptr;
        if (!s.exec_defaults.value("seccomp", nlohmann::json()).is_null()) {
            seccomp = linux_::compile_seccomp_cached(s.exec_defaults["seccomp"], linux_::seccomp_cache_dir(o.root));
            filter = &seccomp;
        }
        std::vector<linux_::ns_handle> joins = container_namespaces(s.pid);
        unique_fd console, console_ours;
        if (p.terminal && !o.console_socket.empty()) {
            console = connect_unix_socket(o.console_socket);
        } else if (p.terminal) {
            int pair[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) throw_errno("socketpair");
            console_ours.reset(pair[0]);
            console.reset(pair[1]);
        }
        auto [parent_end, child_end] = proc::channel::make_pair();

        sigset_t set = forwarded_signal_set(), old;
        ::sigprocmask(SIG_BLOCK, &set, &old);
        unique_fd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
        if (!sigfd) throw_errno("signalfd");

        pid_t helper = clone_process(0);
        if (helper < 0) throw_errno("clone");
        if (helper == 0) {
            parent_end.close();
            try {
                console_ours.reset();
                std::vector<int> keep = {0, 1, 2, child_end.fd(), console.get()};
                for (int fd = 3; fd < 3 + o.preserve_fds; ++fd) keep.push_back(fd);
                for (const auto& j : joins) keep.push_back(j.fd.get());
                close_fds_except(keep);
                ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                // The runtime binary must not be reachable through /proc/PID/exe from inside.
                ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
                linux_::join_namespaces(joins);
                for (const auto& j : joins) ::close(j.fd.get());
                // A joined pid namespace applies to children: fork the process itself, as the
                // runtime's child.
                pid_t child = clone_process(CLONE_PARENT);
                if (child < 0) throw_errno("clone");
                if (child > 0) {
                    child_end.send(proc::msg::init_pid, std::to_string(child));
                    ::_exit(0);
                }
                ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                child_end.expect(proc::msg::go);
                sigset_t none;
                sigemptyset(&none);
                ::sigprocmask(SIG_SETMASK, &none, nullptr);
                // An exec'd process gets a pty of its own; /dev/console stays the init's.
                if (p.terminal) linux_::setup_console(console, p.console_size, false);
                std::string exe = proc::prepare_process(p, filter, child_end, o.preserve_fds);
                ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
                std::vector<char*> argv, envp;
                for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
                argv.push_back(nullptr);
                for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
                envp.push_back(nullptr);
                // The channel closes on exec: the runtime reads that as success.
                ::execve(exe.c_str(), argv.data(), envp.data());
                throw_errno("exec", quote(exe));
            } catch (const std::exception& e) {
                const auto* err = dynamic_cast<const error*>(&e);
                try {
                    child_end.send(proc::msg::error, e.what(), err ? err->code() : 0);
                } catch (...) {
                }
            }
            ::_exit(127);
        }
        child_end.close();
        console.reset();
        pid_t pid = 0;
        try {
            proc::message m = parent_end.receive();
            if (m.type == proc::msg::error) throw error(m.payload, m.err);
            if (m.type != proc::msg::init_pid) throw error(std::string("channel: expected init-pid, got ") + proc::msg_name(m.type));
            pid = static_cast<pid_t>(std::stol(m.payload));
            ::waitpid(helper, nullptr, 0);
            cgroup::group(cgroup_dirs).join(pid);
            parent_end.send(proc::msg::go);
            for (;;) {
                unique_fd listener;
                std::optional<proc::message> r = parent_end.try_receive(&listener);
                if (!r) break;  // exec'd
                if (r->type == proc::msg::error) throw error(r->payload, r->err);
                if (r->type == proc::msg::seccomp_listener && filter) {
                    std::string state = hook_state(s.id, "running", s.pid, s.bundle, s.annotations).dump();
                    linux_::send_seccomp_listener(*filter, listener, pid, state);
                }
            }
        } catch (...) {
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
            ::kill(helper, SIGKILL);
            ::waitpid(helper, nullptr, WNOHANG);
            ::sigprocmask(SIG_SETMASK, &old, nullptr);
            throw;
        }
        if (!o.pid_file.empty()) write_file_atomic(o.pid_file, std::to_string(pid), 0644);
        if (o.detach) return 0;
        if (console_ours) {
            unique_fd master = receive_fd(console_ours, "pty master");
            return relay_terminal(pid, master, sigfd);
        }
        return wait_and_forward(pid, sigfd);
    });
}

}  // namespace pieces::container
