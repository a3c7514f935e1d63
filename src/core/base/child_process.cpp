#include "core/base/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>

#include "core/base/error.h"
#include "core/base/pidfd.h"
#include "core/base/unique_fd.h"

extern char** environ;

namespace pieces {
namespace {

int64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

void keep(std::string& into, const char* data, ssize_t n, size_t limit) {
    if (into.size() < limit) into.append(data, std::min(static_cast<size_t>(n), limit - into.size()));
}

// Reads what `fd` has ready into `into` (up to `limit` kept); false once it is at its end.
bool read_some(int fd, std::string& into, size_t limit) {
    char buf[4096];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0) return errno == EINTR || errno == EAGAIN;
    if (got == 0) return false;
    keep(into, buf, got, limit);
    return true;
}

// Reads what is left in `fd` without waiting for more.
void drain(int fd, std::string& into, size_t limit) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (;;) {
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got > 0) keep(into, buf, got, limit);
        else if (got < 0 && errno == EINTR) continue;
        else return;
    }
}

}  // namespace

child_result run_child(const child_program& p, std::string_view input) {
    int in[2], out[2], err[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0) throw_errno("socketpair");
    unique_fd in_parent(in[0]), in_child(in[1]);
    if (::pipe2(out, O_CLOEXEC) < 0) throw_errno("pipe");
    unique_fd out_r(out[0]), out_w(out[1]);
    if (::pipe2(err, O_CLOEXEC) < 0) throw_errno("pipe");
    unique_fd err_r(err[0]), err_w(err[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_child.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, p.merge_stderr ? out_w.get() : err_w.get(), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe_only);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<std::string> args = p.argv, env = p.env ? *p.env : std::vector<std::string>{};
    std::vector<char*> argv = c_strings(args), envp = c_strings(env);
    char** environment = p.env ? envp.data() : environ;
    pid_t pid = -1;
    int rc = p.search_path ? ::posix_spawnp(&pid, p.path.c_str(), &actions, &attr, argv.data(), environment)
                           : ::posix_spawn(&pid, p.path.c_str(), &actions, &attr, argv.data(), environment);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    child_result result;
    if (rc != 0) {
        result.spawn_error = rc;
        return result;
    }
    in_child.reset();
    out_w.reset();
    err_w.reset();
    unique_fd pidfd(pidfd_open(pid, 0));
    if (!pidfd) throw_errno("pidfd_open");

    // As much as the socket takes at once: a program that does not read its input must not
    // stall us.
    if (!input.empty()) (void)::send(in_parent.get(), input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    in_parent.reset();

    int64_t deadline = p.timeout_seconds ? now_ms() + int64_t{*p.timeout_seconds} * 1000 : -1;
    bool exited = false;
    while (!exited) {
        pollfd fds[3] = {{pidfd.get(), POLLIN, 0}, {out_r ? out_r.get() : -1, POLLIN, 0}, {err_r ? err_r.get() : -1, POLLIN, 0}};
        int timeout = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - now_ms()));
        int n = ::poll(fds, 3, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("poll");
        if (n == 0) {
            pidfd_send_signal(pidfd.get(), SIGKILL);
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
            throw error("timed out after " + std::to_string(*p.timeout_seconds) + " s");
        }
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && !read_some(out_r.get(), result.out, p.output_limit)) out_r.reset();
        if ((fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && !read_some(err_r.get(), result.err, p.output_limit)) err_r.reset();
        if (fds[0].revents & POLLIN) exited = true;
    }
    // What it wrote before it exited is still in the pipes; a process it left behind may keep
    // them open, so they are read without waiting.
    if (out_r) drain(out_r.get(), result.out, p.output_limit);
    if (err_r) drain(err_r.get(), result.err, p.output_limit);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid");
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    else result.status = WEXITSTATUS(status);
    return result;
}

std::string last_line(std::string_view text) {
    std::string t(text);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    size_t start = t.rfind('\n');
    start = start == std::string::npos ? 0 : start + 1;
    while (start < t.size() && std::isspace(static_cast<unsigned char>(t[start]))) ++start;
    return t.substr(start);
}

}  // namespace pieces
