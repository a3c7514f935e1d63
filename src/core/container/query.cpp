#include <pwd.h>
#include <sys/stat.h>

#include "core/base/error.h"
#include "core/cgroup/cgroup.h"
#include "core/container/internal.h"

namespace pieces::container {
namespace {

std::string owner_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return "";
    if (passwd* pw = ::getpwuid(st.st_uid)) return pw->pw_name;
    return std::to_string(st.st_uid);
}

nlohmann::json state_document(const state_dir& dir, const saved_state& s) {
    status st = dir.current_status(s);
    return nlohmann::json{
        {"ociVersion", spec::oci_version},
        {"id", s.id},
        {"pid", st == status::stopped ? 0 : s.pid},
        {"status", status_name(st)},
        {"bundle", s.bundle},
        {"rootfs", s.rootfs},
        {"created", s.created},
        {"owner", owner_of(dir.path())},
        {"annotations", s.annotations},
    };
}

}  // namespace

nlohmann::json state(const std::string& root, const std::string& id) {
    return with_context("state of container " + id, [&] {
        state_dir dir = state_dir::open(root, id, false);
        return state_document(dir, dir.load());
    });
}

std::vector<nlohmann::json> list(const std::string& root) {
    std::vector<nlohmann::json> out;
    for (const std::string& id : list_ids(root)) {
        try {
            state_dir dir = state_dir::open(root, id, false);
            out.push_back(state_document(dir, dir.load()));
        } catch (const error&) {
            // Deleted between the listing and the look: not a container any more.
        }
    }
    return out;
}

std::vector<pid_t> pids(const std::string& root, const std::string& id) {
    return with_context("ps container " + id, [&] {
        state_dir dir = state_dir::open(root, id, false);
        saved_state s = dir.load();
        if (dir.current_status(s) == status::stopped && cgroup::group(s.cgroup_dirs).pids().empty())
            return std::vector<pid_t>{};
        return cgroup::group(s.cgroup_dirs).pids();
    });
}

}  // namespace pieces::container
