#include "core/linux/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include "core/base/pidfd.h"
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"

namespace pieces::linux_ {
namespace {

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

std::string last_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    auto nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
}

void run_hook(const spec::hook& h, const std::string& state_json, std::string_view stage, size_t index) {
    std::string what = std::string(stage) + " hook #" + std::to_string(index) + " " + quote(h.path);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) < 0) throw_errno("pipe");
    unique_fd in_r(in[0]), in_w(in[1]);
    if (::pipe2(out, O_CLOEXEC) < 0) throw_errno("pipe");
    unique_fd out_r(out[0]), out_w(out[1]);
    std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
    std::vector<std::string> env = h.env;
    auto argv = c_strings(args);
    auto envp = c_strings(env);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", what);
    if (pid == 0) {
        ::dup2(in_r.get(), 0);
        ::dup2(out_w.get(), 1);
        ::dup2(out_w.get(), 2);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve(h.path.c_str(), argv.data(), envp.data());
        dprintf(2, "exec %s: %s", h.path.c_str(), strerror(errno));
        ::_exit(127);
    }
    in_r.reset();
    out_w.reset();
    unique_fd pidfd(pieces::pidfd_open(pid, 0));
    if (!pidfd) throw_errno("pidfd_open", what);
    // A hook that does not read its stdin must not stall us: ignore EPIPE and short writes.
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
    ssize_t n = ::write(in_w.get(), state_json.data(), state_json.size());
    (void)n;
    in_w.reset();

    std::string output;
    int64_t deadline = h.timeout ? now_ms() + int64_t{*h.timeout} * 1000 : -1;
    bool exited = false;
    while (!exited) {
        pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {out_r.get(), POLLIN, 0}};
        int timeout = -1;
        if (deadline >= 0) timeout = static_cast<int>(std::max<int64_t>(0, deadline - now_ms()));
        int r = ::poll(fds, out_r ? 2 : 1, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw_errno("poll", what);
        if (r == 0) {
            pieces::pidfd_send_signal(pidfd.get(), SIGKILL);
            ::waitpid(pid, nullptr, 0);
            throw error(what + " timed out after " + std::to_string(*h.timeout) + "s");
        }
        if (out_r && (fds[1].revents & (POLLIN | POLLHUP))) {
            char buf[4096];
            ssize_t got = ::read(out_r.get(), buf, sizeof buf);
            if (got > 0) {
                if (output.size() < 65536) output.append(buf, static_cast<size_t>(got));
            } else {
                out_r.reset();
            }
        }
        if (fds[0].revents & POLLIN) exited = true;
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) < 0) throw_errno("waitpid", what);
    std::string tail = last_line(output);
    if (WIFSIGNALED(status))
        throw error(what + " was killed by signal " + std::to_string(WTERMSIG(status)) + (tail.empty() ? "" : ": " + tail));
    if (WEXITSTATUS(status) != 0)
        throw error(what + " exited with status " + std::to_string(WEXITSTATUS(status)) + (tail.empty() ? "" : ": " + tail));
}

}  // namespace

void run_hooks(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage) {
    for (size_t i = 0; i < hooks.size(); ++i) run_hook(hooks[i], state_json, stage, i);
}

void run_hooks_warn(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage) {
    for (size_t i = 0; i < hooks.size(); ++i) {
        try {
            run_hook(hooks[i], state_json, stage, i);
        } catch (const std::exception& e) {
            log::warning(e.what());
        }
    }
}

}  // namespace pieces::linux_
