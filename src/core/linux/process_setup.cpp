#include "core/linux/process_setup.h"

#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"

namespace pieces::linux_ {

void set_rlimits(const std::vector<spec::rlimit>& rlimits) {
    for (const auto& r : rlimits) {
        struct rlimit lim {static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
        if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) < 0)
            throw_errno("setrlimit " + r.name, "to " + std::to_string(r.soft) + "/" + std::to_string(r.hard));
    }
}

void switch_user(const spec::user& u, bool setgroups_allowed) {
    if (setgroups_allowed) {
        if (::setgroups(u.additional_gids.size(), u.additional_gids.data()) < 0) throw_errno("setgroups");
    }
    if (::setresgid(u.gid, u.gid, u.gid) < 0) throw_errno("setresgid", std::to_string(u.gid));
    if (::setresuid(u.uid, u.uid, u.uid) < 0) throw_errno("setresuid", std::to_string(u.uid));
}

namespace {
bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}
}  // namespace

std::string find_executable(const std::string& arg0, const std::vector<std::string>& env) {
    if (arg0.find('/') != std::string::npos) {
        // Worded as runc words them, lower case: Docker tells "no such file or directory"
        // (exit 127) from "permission denied" (126) by these words in the runtime's error.
        struct stat st {};
        if (::stat(arg0.c_str(), &st) < 0) {
            int err = errno;
            std::string text = std::strerror(err);
            if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
            throw error("exec " + quote(arg0) + ": stat " + arg0 + ": " + text, err);
        }
        if (!S_ISREG(st.st_mode) || ::access(arg0.c_str(), X_OK) < 0)
            throw error("exec " + quote(arg0) + ": permission denied", EACCES);
        return arg0;
    }
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto& e : env)
        if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find(':', i);
        if (j == std::string::npos) j = path.size();
        std::string dir = path.substr(i, j - i);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + arg0;
        if (is_executable_file(candidate)) return candidate;
        i = j + 1;
    }
    throw error("exec: " + quote(arg0) + ": executable file not found in $PATH", ENOENT);
}

void set_oom_score_adj(const std::string& pid, int adj) {
    procfs::handle::open().write(pid + "/oom_score_adj", std::to_string(adj));
}

}  // namespace pieces::linux_
