#include "core/base/error.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/resources.h"
#include "core/cgroup/systemd.h"
#include "core/cgroup/stats.h"
#include "core/container/internal.h"

namespace pieces::container {

void pause(const std::string& root, const std::string& id) {
    with_context("pause container " + id, [&] {
        state_dir dir = state_dir::open(root, id, true);
        saved_state s = dir.load();
        status st = dir.current_status(s);
        if (st != status::running && st != status::created) throw error("container not running");
        cgroup::group(s.cgroup_dirs).freeze(true);
    });
}

void resume(const std::string& root, const std::string& id) {
    with_context("resume container " + id, [&] {
        state_dir dir = state_dir::open(root, id, true);
        saved_state s = dir.load();
        if (dir.current_status(s) != status::paused) throw error("container not paused");
        cgroup::group(s.cgroup_dirs).freeze(false);
    });
}

nlohmann::json stats_event(const std::string& root, const std::string& id) {
    return with_context("events of container " + id, [&] {
        state_dir dir = state_dir::open(root, id, false);
        saved_state s = dir.load();
        if (dir.current_status(s) == status::stopped) throw error("container not running");
        return nlohmann::json{{"type", "stats"}, {"id", id}, {"data", cgroup::stats(cgroup::group(s.cgroup_dirs))}};
    });
}

void update(const std::string& root, const std::string& id, const nlohmann::json& resources) {
    with_context("update container " + id, [&] {
        state_dir dir = state_dir::open(root, id, true);
        saved_state s = dir.load();
        if (dir.current_status(s) == status::stopped) throw error("container not running");
        cgroup::group cg(s.cgroup_dirs);
        std::vector<cgroup::setting> settings = cg.settings(resources);
        // systemd first, so that it holds the new values and does not put back the old ones.
        if (!s.systemd_unit.empty()) {
            std::vector<cgroup::systemd::property> props =
                cgroup::systemd::resource_properties(resources, !cgroup::has_v1_hierarchies(cg.layout()));
            if (!props.empty()) cgroup::systemd::manager::connection().set_properties(s.systemd_unit, props);
        }
        cg.apply(settings);
    });
}

}  // namespace pieces::container
