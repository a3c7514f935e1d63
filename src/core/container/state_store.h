// Per-container state directories under --root: creation, locking, the saved state.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/unique_fd.h"

namespace pieces::container {

/// What is saved in state.json when create finishes.
struct saved_state {
    std::string id;
    pid_t pid = 0;
    unsigned long long start_time = 0;  ///< of the init, to tell a reused pid apart
    std::string bundle;
    std::string rootfs;
    std::string created;  ///< RFC 3339
    std::string owner;
    std::map<std::string, std::string> annotations;
    std::vector<std::string> cgroup_dirs;
    std::string systemd_unit;  ///< the unit systemd holds the cgroup as (--systemd-cgroup), or ""
    nlohmann::json hooks;  ///< the config's hooks, for start (poststart) and delete (poststop)
    nlohmann::json exec_defaults;  ///< the config's process and seccomp, what `exec` starts from
};

nlohmann::json to_json(const saved_state& s);
saved_state saved_state_from_json(const nlohmann::json& j);

enum class status { creating, created, running, paused, stopped };
const char* status_name(status s);

/// A container's state directory, held open and flock'ed for as long as this object lives.
class state_dir {
public:
    /// Makes the directory for a new container; fails if the id is taken.
    static state_dir create(const std::string& root, const std::string& id);
    /// Opens and locks an existing container's directory; `exclusive` for commands that change it.
    static state_dir open(const std::string& root, const std::string& id, bool exclusive);

    const std::string& path() const { return path_; }
    const std::string& id() const { return id_; }
    std::string fifo_path() const { return path_ + "/exec.fifo"; }

    saved_state load() const;
    void save(const saved_state& s) const;
    /// Works out the status from the saved state and what the kernel says of the init.
    status current_status(const saved_state& s) const;

    /// Removes the directory (the lock goes with it).
    void remove();

private:
    std::string root_, id_, path_;
    unique_fd fd_;
};

/// Checks a container id: letters, digits and "_+-." only, not "." or "..".
void validate_id(const std::string& id);

/// Makes --root when missing (mode 0711) and returns it.
std::string ensure_root(const std::string& root);

/// The ids of the containers under --root.
std::vector<std::string> list_ids(const std::string& root);

/// True while the init recorded in `s` is alive (not exited, not a zombie, not a reused pid).
bool init_alive(const saved_state& s);

}  // namespace pieces::container
