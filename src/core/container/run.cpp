#include <signal.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"
#include "core/base/socket.h"
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

namespace {

// Puts our terminal (if stdin is one) in raw mode for as long as this lives.
class raw_mode {
public:
    raw_mode() {
        if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_) < 0) return;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    ~raw_mode() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
    raw_mode(const raw_mode&) = delete;
    raw_mode& operator=(const raw_mode&) = delete;

private:
    termios saved_{};
    bool active_ = false;
};

void copy_window_size(borrowed_fd master) {
    winsize ws{};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ::ioctl(master.get(), TIOCSWINSZ, &ws);
}

// Moves bytes from `from` to `to`; false at end of input (or a closed pty).
bool pump(borrowed_fd from, borrowed_fd to) {
    char buf[8192];
    ssize_t n = ::read(from.get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    try {
        write_all(to, std::string_view(buf, static_cast<size_t>(n)), "terminal");
    } catch (const error&) {
        return false;
    }
    return true;
}

}  // namespace

int relay_terminal(pid_t init, borrowed_fd master, borrowed_fd sigfd) {
    raw_mode raw;
    copy_window_size(master);
    bool stdin_open = true, master_open = true;
    int code = -1;
    while (master_open) {
        pollfd fds[3] = {{master.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (::poll(fds, stdin_open ? 3 : 2, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll terminal");
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) master_open = pump(master, STDOUT_FILENO);
        if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) stdin_open = pump(STDIN_FILENO, master);
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(sigfd.get(), &info, sizeof info) != sizeof info) continue;
            int sig = static_cast<int>(info.ssi_signo);
            if (sig == SIGWINCH) {
                copy_window_size(master);
            } else if (sig != SIGCHLD) {
                ::kill(init, sig);
            } else {
                for (;;) {
                    int status = 0;
                    pid_t pid = ::waitpid(-1, &status, WNOHANG);
                    if (pid <= 0) break;
                    if (pid == init) code = exit_code(status);
                }
            }
        }
    }
    // The pty is closed once every process of the container is gone; the init may still need
    // reaping.
    while (code < 0) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0) break;
        if (pid == init) code = exit_code(status);
    }
    return code < 0 ? 255 : code;
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
    // In the foreground with no console socket, a terminal comes back to us: the init sends
    // the pty master over this pair, and we relay it to our own stdio, as runc does.
    unique_fd console_ours, master;
    create_options copts = opts;
    if (!ropts.detach && opts.console_socket.empty()) {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) throw_errno("socketpair");
        console_ours.reset(pair[0]);
        copts.console_fd = pair[1];
    }
    unique_fd console_theirs(copts.console_fd);
    pid_t init = 0;
    {
        created_container c = create_container(copts);
        console_theirs.reset();
        init = c.pid;
        if (c.terminal && console_ours) master = receive_fd(console_ours, "pty master");
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
    int code = master ? relay_terminal(init, master, sigfd) : wait_and_forward(init, sigfd);
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
