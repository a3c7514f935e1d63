// Placing a container in cgroups on v1, v2 and hybrid hosts, listing and killing its processes.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cgroup/resources.h"

namespace pieces::cgroup {

/// The directories of one container's cgroup, one per mounted hierarchy.
class group {
public:
    group() = default;
    explicit group(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

    /// Works out the directories for a container: `cgroups_path` absolute (from each
    /// hierarchy's root), relative (below the caller's own cgroup), or absent (the id there).
    static group for_container(const std::optional<std::string>& cgroups_path, const std::string& id,
                               bool systemd = false);

    /// Makes the directories (copying cpuset's cpus/mems down where v1 needs them), writes the
    /// resource settings into them, and moves `pid` in.
    void create_and_join(pid_t pid, const std::vector<setting>& resources = {}) const;
    /// Moves `pid` into the existing directories.
    void join(pid_t pid) const;
    /// Writes resource settings into the directories of the hierarchies that hold their controllers.
    void apply(const std::vector<setting>& resources) const;
    /// The processes in the cgroup.
    std::vector<pid_t> pids() const;
    /// Sends `sig` to every process in the cgroup.
    void signal_all(int sig) const;
    /// Freezes (or thaws) every process: the v1 freezer where it is mounted, else cgroup.freeze
    /// on cgroup2. Returns once the kernel reports the new state.
    void freeze(bool frozen) const;
    /// True when the cgroup is frozen.
    bool frozen() const;
    /// Removes the directories; processes must be gone.
    void destroy() const;

    const std::vector<std::string>& dirs() const { return dirs_; }
    /// Our directory in each mounted v1 hierarchy, by controller name ("memory" -> its dir).
    std::map<std::string, std::string> v1_dirs() const;

private:
    static group for_container_path(const std::optional<std::string>& cgroups_path, const std::string& id);
    std::vector<std::string> dirs_;
};

/// linux.resources as writes for this host: v1 files where v1 hierarchies are mounted (v1 and
/// hybrid hosts), cgroup2 files on a pure cgroup2 host.
std::vector<setting> settings_for_host(const nlohmann::json& resources);

/// The cgroupfs path a systemd-style cgroupsPath ("slice:prefix:name") stands for, as systemd
/// would lay it out: "system.slice:docker:abc" -> "/system.slice/docker-abc.scope", and a
/// nested slice "a-b.slice" expands to "/a.slice/a-b.slice". Used where systemd does not run.
std::string systemd_to_cgroupfs(const std::string& cgroups_path, const std::string& id);

}  // namespace pieces::cgroup
