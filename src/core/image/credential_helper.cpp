#include "core/image/credential_helper.h"

#include <cctype>
#include <cerrno>

#include <nlohmann/json.hpp>

#include "core/base/child_process.h"
#include "core/base/error.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

std::string trimmed(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t start = 0;
    while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
    return s.substr(start);
}

// Runs `docker-credential-NAME ACTION` with `input` on its standard input.
child_result run_helper(const std::string& name, const char* action, const std::string& input) {
    child_program p;
    p.path = "docker-credential-" + name;
    p.argv = {p.path, action};
    p.search_path = true;
    p.timeout_seconds = credential_helper_timeout_seconds;
    child_result r = run_child(p, input);
    if (r.spawn_error == ENOENT) throw error("not installed (no " + p.path + " in PATH)");
    if (r.spawn_error) throw_errno_code(r.spawn_error, "run", p.path);
    if (r.signal) throw error("killed by signal " + std::to_string(r.signal));
    return r;
}

// The error for a helper that did not do what it was asked: its status and its own last words
// (helpers print their errors on standard output; standard error when that is empty).
[[noreturn]] void helper_failed(const child_result& run) {
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
    if (user.find(':') != std::string::npos) throw error("a user name with ':', which Basic authentication cannot carry");
    return user + ":" + j["Secret"].get<std::string>();
}

bool helper_says_not_found(int status, const std::string& output) {
    return status == 1 && trimmed(output) == "credentials not found in native keychain";
}

std::optional<std::string> helper_get(const std::string& name, const std::string& server_url) {
    child_result run = run_helper(name, "get", server_url);
    if (helper_says_not_found(run.status, run.out)) return std::nullopt;
    if (run.status != 0) helper_failed(run);
    return parse_helper_credentials(run.out);
}

void helper_store(const std::string& name, const std::string& server_url, const std::string& user, const std::string& secret) {
    json request = {{"ServerURL", server_url}, {"Username", user}, {"Secret", secret}};
    child_result run = run_helper(name, "store", request.dump());
    if (run.status != 0) helper_failed(run);
}

bool helper_erase(const std::string& name, const std::string& server_url) {
    child_result run = run_helper(name, "erase", server_url);
    if (helper_says_not_found(run.status, run.out)) return false;
    if (run.status != 0) helper_failed(run);
    return true;
}

}  // namespace pieces::image
