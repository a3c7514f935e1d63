#include "core/container/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"
#include "core/cgroup/cgroup.h"

namespace pieces::container {

using json = nlohmann::json;

json to_json(const saved_state& s) {
    json j{{"id", s.id},           {"pid", s.pid},         {"start_time", s.start_time},
                {"bundle", s.bundle},   {"rootfs", s.rootfs},   {"created", s.created},
                {"owner", s.owner},     {"annotations", s.annotations},
                {"cgroup_dirs", s.cgroup_dirs}, {"hooks", s.hooks}, {"exec_defaults", s.exec_defaults}};
    if (!s.systemd_unit.empty()) j["systemd_unit"] = s.systemd_unit;
    return j;
}

saved_state saved_state_from_json(const json& j) {
    saved_state s;
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.start_time = j.at("start_time").get<unsigned long long>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.value("rootfs", "");
    s.created = j.at("created").get<std::string>();
    s.owner = j.value("owner", "");
    s.annotations = j.value("annotations", std::map<std::string, std::string>{});
    s.cgroup_dirs = j.value("cgroup_dirs", std::vector<std::string>{});
    s.systemd_unit = j.value("systemd_unit", std::string());
    s.hooks = j.value("hooks", json::object());
    s.exec_defaults = j.value("exec_defaults", json::object());
    return s;
}

const char* status_name(status s) {
    switch (s) {
        case status::creating: return "creating";
        case status::created: return "created";
        case status::running: return "running";
        case status::paused: return "paused";
        case status::stopped: return "stopped";
    }
    return "unknown";
}

void validate_id(const std::string& id) {
    bool ok = !id.empty() && id != "." && id != ".." && id.size() <= 1024 &&
              std::all_of(id.begin(), id.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '_' || c == '+' || c == '-' || c == '.';
              });
    if (!ok) throw error("invalid container id " + quote(id) + ": use letters, digits and _+-.");
}

std::string ensure_root(const std::string& root) {
    if (::mkdir(root.c_str(), 0711) < 0 && errno != EEXIST) {
        if (errno != ENOENT) throw_errno("mkdir", quote(root));
        std::error_code ec;
        std::filesystem::create_directories(root, ec);
        if (ec) throw error("mkdir " + quote(root) + ": " + ec.message());
    }
    return root;
}

namespace {

void lock(borrowed_fd fd, bool exclusive, const std::string& path) {
    while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno != EINTR) throw_errno("lock", quote(path));
    }
}

}  // namespace

state_dir state_dir::create(const std::string& root, const std::string& id) {
    validate_id(id);
    ensure_root(root);
    state_dir d;
    d.root_ = root;
    d.id_ = id;
    d.path_ = root + "/" + id;
    if (::mkdir(d.path_.c_str(), 0711) < 0) {
        if (errno == EEXIST) throw error("container with id exists: " + id, EEXIST);
        throw_errno("mkdir", quote(d.path_));
    }
    d.fd_ = open_path(d.path_, O_RDONLY | O_DIRECTORY);
    lock(d.fd_, true, d.path_);
    return d;
}

state_dir state_dir::open(const std::string& root, const std::string& id, bool exclusive) {
    validate_id(id);
    state_dir d;
    d.root_ = root;
    d.id_ = id;
    d.path_ = root + "/" + id;
    int fd = ::open(d.path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) throw error("container does not exist", ENOENT);
        throw_errno("open", quote(d.path_));
    }
    d.fd_.reset(fd);
    lock(d.fd_, exclusive, d.path_);
    struct stat st {};
    // Deleted while we waited for the lock, or still being created (no state yet).
    if (::fstat(fd, &st) < 0 || st.st_nlink == 0) throw error("container does not exist", ENOENT);
    if (::faccessat(fd, "state.json", F_OK, 0) < 0) throw error("container does not exist", ENOENT);
    return d;
}

saved_state state_dir::load() const {
    std::string text = read_file(path_ + "/state.json");
    json j = json::parse(text, nullptr, false);
    // The callers name the container; say which file is wrong (runc's state.json, for one).
    if (j.is_discarded()) throw error(quote(path_ + "/state.json") + " is corrupt: not JSON");
    return with_context("saved state " + quote(path_ + "/state.json"), [&] { return saved_state_from_json(j); });
}

void state_dir::save(const saved_state& s) const { write_file_atomic(path_ + "/state.json", to_json(s).dump(), 0600); }

bool init_alive(const saved_state& s) {
    if (s.pid <= 0) return false;
    auto st = procfs::stat(s.pid);
    return st && st->start_time == s.start_time && st->state != 'Z' && st->state != 'X';
}

status state_dir::current_status(const saved_state& s) const {
    if (!init_alive(s)) return status::stopped;
    if (::faccessat(fd_.get(), "exec.fifo", F_OK, 0) == 0) return status::created;
    if (cgroup::group(s.cgroup_dirs).frozen()) return status::paused;
    return status::running;
}

void state_dir::remove() {
    remove_all(path_);
    fd_.reset();
}

std::vector<std::string> list_ids(const std::string& root) {
    std::vector<std::string> ids;
    DIR* d = ::opendir(root.c_str());
    if (!d) {
        if (errno == ENOENT) return ids;
        throw_errno("opendir", quote(root));
    }
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (::access((root + "/" + name + "/state.json").c_str(), F_OK) == 0) ids.push_back(name);
    }
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    return ids;
}

}  // namespace pieces::container
