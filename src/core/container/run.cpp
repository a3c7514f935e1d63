#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/log.h"
#include "core/container/internal.h"

namespace pieces::container {
namespace {

// Signals a foreground `run` passes on to the container instead of acting on them.
constexpr int forwarded_signals[] = {SIGHUP, SIGINT,  SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM,
                                     SIGTERM, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,  SIGWINCH,
                                     SIGIO,  SIGPWR,  SIGSYS,  SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ};

}  // namespace

sigset_t forwarded_signal_set() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : forwarded_signals) sigaddset(&set, s);
    sigaddset(&set, SIGCHLD);
    return set;
}

namespace {

int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

}  // namespace

int wait_and_forward(pid_t init, borrowed_fd sigfd) {
    for (;;) {
        signalfd_siginfo info{};
        ssize_t n = ::read(sigfd.get(), &info, sizeof info);
        if (n < 0 && errno == EINTR) continue;
        if (n != sizeof info) throw_errno("read signalfd");
        int sig = static_cast<int>(info.ssi_signo);
        if (sig != SIGCHLD) {
            ::kill(init, sig);
            continue;
        }
        // As a subreaper we also inherit the container's orphans: reap them all.
        for (;;) {
            int status = 0;
            pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (pid == init) return exit_code(status);
        }
    }
}

int run(const create_options& opts, const run_options& ropts) {
    if (!ropts.detach && !ropts.no_subreaper && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        throw_errno("prctl PR_SET_CHILD_SUBREAPER");
    // Blocked before the clone so no signal is lost between create and the wait; the init
    // unblocks them before it execs.
    sigset_t set = forwarded_signal_set();
    sigset_t old;
    if (!ropts.detach) ::sigprocmask(SIG_BLOCK, &set, &old);
    unique_fd sigfd;
    if (!ropts.detach) {
        sigfd.reset(::signalfd(-1, &set, SFD_CLOEXEC));
        if (!sigfd) throw_errno("signalfd");
    }
    pid_t init = 0;
    {
        created_container c = create_container(opts);
        init = c.pid;
        try {
            with_context("start container " + opts.id, [&] { start_locked(c.dir, c.dir.load()); });
        } catch (...) {
            ::kill(init, SIGKILL);
            ::waitpid(init, nullptr, 0);
            remove_locked(c.dir, c.dir.load());
            throw;
        }
    }
    if (ropts.detach) return 0;
    int code = wait_and_forward(init, sigfd);
    if (!ropts.keep) {
        try {
            state_dir dir = state_dir::open(opts.root, opts.id, true);
            saved_state s = dir.load();
            remove_locked(dir, s);
        } catch (const std::exception& e) {
            log::warning(std::string("delete container ") + opts.id + ": " + e.what());
        }
    }
    return code;
}

}  // namespace pieces::container
