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

/// One mounted cgroup hierarchy, as /proc/self/mountinfo shows it.
struct hierarchy {
    std::string mount_point;
    std::string root;                      ///< the part of the hierarchy the mount shows
    bool unified = false;                  ///< cgroup2
    std::vector<std::string> controllers;  ///< v1: the mount's options ("memory", "name=systemd", "rw")
};

/// The cgroup hierarchies mounted here, one per mount point: one read of /proc/self/mountinfo.
std::vector<hierarchy> mounted_hierarchies();

/// The directories of one container's cgroup, one per mounted hierarchy.
class group {
public:
    group() = default;
    /// The hierarchy layout is read from mountinfo the first time a method needs it, then kept.
    explicit group(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}
    group(std::vector<std::string> dirs, std::vector<hierarchy> layout)
        : dirs_(std::move(dirs)), layout_(std::move(layout)) {}

    /// Works out the directories for a container: `cgroups_path` absolute (from each
    /// hierarchy's root), relative (below the caller's own cgroup), or absent (the id there).
    static group for_container(const std::optional<std::string>& cgroups_path, const std::string& id,
                               bool systemd = false);

    /// Makes the directories (copying cpuset's cpus/mems down where v1 needs them), writes the
    /// resource settings into them, and moves `pid` in.
    void create_and_join(pid_t pid, const std::vector<setting>& resources = {}) const;
    /// Moves `pid` into the existing directories.
    void join(pid_t pid) const;
    /// Writes resource settings into the directories of the hierarchies that hold their
    /// controllers. A limit marked check_usage that is not above the current usage is refused
    /// before anything is written.
    void apply(const std::vector<setting>& resources) const;
    /// linux.resources as writes for the layout of this group's host (see settings_for_host).
    std::vector<setting> settings(const nlohmann::json& resources) const;
    /// The processes in the cgroup and its sub-cgroups.
    std::vector<pid_t> pids() const;
    /// Sends `sig` to every process in the cgroup. SIGKILL goes through cgroup.kill where
    /// cgroup2 has it; otherwise the cgroup is frozen while the processes are signalled, so that
    /// none can fork a child the signal misses, and thawed after (unless it was paused before
    /// and the signal is not SIGKILL).
    void signal_all(int sig) const;
    /// Freezes (or thaws) every process: the v1 freezer where it is mounted, else cgroup.freeze
    /// on cgroup2. Returns once the kernel reports the new state.
    void freeze(bool frozen) const;
    /// True when the cgroup is frozen.
    bool frozen() const;
    /// Removes the directories and any sub-cgroups below them; processes must be gone.
    void destroy() const;

    const std::vector<std::string>& dirs() const { return dirs_; }
    /// Our directory in each mounted v1 hierarchy, by controller name ("memory" -> its dir).
    std::map<std::string, std::string> v1_dirs() const;
    /// Our directory in the cgroup2 hierarchy, or "" when none is mounted.
    std::string v2_dir() const;
    /// The mounted hierarchies this group was laid out on.
    const std::vector<hierarchy>& layout() const;

private:
    static group for_container_path(const std::optional<std::string>& cgroups_path, const std::string& id);
    /// Refuses a check_usage memory limit that is not above what the cgroup already uses.
    void check_usage(const std::vector<setting>& resources) const;
    /// The controller's directory for this group, or "" when the host does not offer it.
    std::string dir_for(const std::string& controller) const;
    std::vector<std::string> dirs_;
    mutable std::optional<std::vector<hierarchy>> layout_;
};

/// True when some hierarchy is cgroup v1 (a v1 or hybrid host), false on a pure cgroup2 host.
bool has_v1_hierarchies(const std::vector<hierarchy>& layout);

/// linux.resources as writes for this host: v1 files where v1 hierarchies are mounted (v1 and
/// hybrid hosts), cgroup2 files on a pure cgroup2 host. Reads mountinfo: where a group is at
/// hand, group::settings uses the layout it already has.
std::vector<setting> settings_for_host(const nlohmann::json& resources);
/// The same for a layout already read.
std::vector<setting> settings_for_layout(const nlohmann::json& resources, const std::vector<hierarchy>& layout);

/// The cgroupfs path a systemd-style cgroupsPath ("slice:prefix:name") stands for, as systemd
/// would lay it out: "system.slice:docker:abc" -> "/system.slice/docker-abc.scope", and a
/// nested slice "a-b.slice" expands to "/a.slice/a-b.slice". Used where systemd does not run.
std::string systemd_to_cgroupfs(const std::string& cgroups_path, const std::string& id);

}  // namespace pieces::cgroup
