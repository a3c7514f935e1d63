#include "core/image/credential_helper.h"

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

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

extern char** environ;

namespace pieces::image {
namespace {

using json = nlohmann::json;

struct helper_run {
    int status = 0;       // the exit status
    std::string out;      // standard output
    std::string err;      // standard error
};

int64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

std::string trimmed(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t start = 0;
    while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
    return s.substr(start);
}

// The last non-empty line of a helper's words, for an error message.
std::string last_line(const std::string& text) {
    std::string t = trimmed(text);
    size_t nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

// Runs `docker-credential-NAME ACTION` with `input` on its standard input and collects what it
// prints. Standard input is one end of a socket pair, so that a helper gone before reading it
// costs an error rather than SIGPIPE; the other descriptors are pipes. Every descriptor is
// O_CLOEXEC: the helper gets its three and nothing else of ours.
helper_run run_helper(const std::string& name, const char* action, const std::string& input) {
    std::string program = "docker-credential-" + name;
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
    posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe_only);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string verb = action;
    char* argv[] = {program.data(), verb.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc == ENOENT) throw error("not installed (no " + program + " in PATH)");
    if (rc != 0) throw_errno_code(rc, "run", program);
    in_child.reset();
    out_w.reset();
    err_w.reset();

    if (::send(in_parent.get(), input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE)
        throw_errno("write to", program);
    in_parent.reset();

    helper_run result;
    int64_t deadline = now_ms() + int64_t{credential_helper_timeout_seconds} * 1000;
    while (out_r || err_r) {
        pollfd fds[2] = {{out_r ? out_r.get() : -1, POLLIN, 0}, {err_r ? err_r.get() : -1, POLLIN, 0}};
        int left = static_cast<int>(std::max<int64_t>(0, deadline - now_ms()));
        int n = ::poll(fds, 2, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("poll", program);
        if (n == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            throw error("timed out after " + std::to_string(credential_helper_timeout_seconds) + " s");
        }
        unique_fd* ends[2] = {&out_r, &err_r};
        std::string* into[2] = {&result.out, &result.err};
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t got = ::read(ends[i]->get(), buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got > 0 && into[i]->size() < (1 << 20)) into[i]->append(buf, static_cast<size_t>(got));
            if (got <= 0) ends[i]->reset();
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid", program);
    if (WIFSIGNALED(status)) throw error("killed by signal " + std::to_string(WTERMSIG(status)));
    result.status = WEXITSTATUS(status);
    return result;
}

// The error for a helper that did not do what it was asked: its status and its own last words
// (helpers print their errors on standard output; standard error when that is empty).
[[noreturn]] void helper_failed(const helper_run& run) {
    std::string why = last_line(run.out);
    if (why.empty()) why = last_line(run.err);
    throw error("exited with status " + std::to_string(run.status) + (why.empty() ? "" : ": " + why));
}

}  // namespace

std::optional<std::string> parse_helper_credentials(const std::string& output) {
    json j = json::parse(output, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("Username") || !j["Username"].is_string() ||
        !j.contains("Secret") || !j["Secret"].is_string())
        throw error("an answer that is not {\"Username\": ..., \"Secret\": ...}: " + last_line(output));
    std::string user = j["Username"].get<std::string>();
    if (user.empty() && j["Secret"].get<std::string>().empty()) return std::nullopt;
    if (user == "<token>") throw error("an identity token, which pieces does not support (log in with a user name and password)");
    if (user.find(':') != std::string::npos) throw error("a user name with ':', which Basic authentication cannot carry");
    return user + ":" + j["Secret"].get<std::string>();
}

bool helper_says_not_found(int status, const std::string& output) {
    return status == 1 && trimmed(output) == "credentials not found in native keychain";
}

std::optional<std::string> helper_get(const std::string& name, const std::string& server_url) {
    helper_run run = run_helper(name, "get", server_url);
    if (helper_says_not_found(run.status, run.out)) return std::nullopt;
    if (run.status != 0) helper_failed(run);
    return parse_helper_credentials(run.out);
}

void helper_store(const std::string& name, const std::string& server_url, const std::string& user, const std::string& secret) {
    json request = {{"ServerURL", server_url}, {"Username", user}, {"Secret", secret}};
    helper_run run = run_helper(name, "store", request.dump());
    if (run.status != 0) helper_failed(run);
}

bool helper_erase(const std::string& name, const std::string& server_url) {
    helper_run run = run_helper(name, "erase", server_url);
    if (helper_says_not_found(run.status, run.out)) return false;
    if (run.status != 0) helper_failed(run);
    return true;
}

}  // namespace pieces::image
