#include <unistd.h>

#include <optional>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
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

namespace {

// systemd keeps the quota as a share of a second: a new quota alone needs the period in force
// (and a new period alone the quota), which the update may not give. They are read from the
// cgroup: cpu.cfs_quota_us/cfs_period_us on v1, "quota period" in cpu.max on cgroup2.
nlohmann::json with_cpu_pair(const cgroup::group& cg, nlohmann::json resources) {
    if (!resources.is_object()) return resources;
    nlohmann::json cpu = resources.value("cpu", nlohmann::json());
    if (!cpu.is_object()) return resources;
    auto given = [&](const char* key) {
        auto it = cpu.find(key);
        return it != cpu.end() && !it->is_null();
    };
    bool quota = given("quota"), period = given("period");
    if (quota == period) return resources;
    auto number = [](const std::string& text) -> std::optional<int64_t> {
        if (text == "max") return -1;
        try {
            return std::stoll(text);
        } catch (const std::logic_error&) {
            return std::nullopt;
        }
    };
    std::optional<int64_t> current_quota, current_period;
    auto v1 = cg.v1_dirs();
    if (auto it = v1.find("cpu"); it != v1.end()) {
        current_quota = number(read_file(it->second + "/cpu.cfs_quota_us"));
        current_period = number(read_file(it->second + "/cpu.cfs_period_us"));
    } else if (std::string v2 = cg.v2_dir(); !v2.empty() && ::access((v2 + "/cpu.max").c_str(), F_OK) == 0) {
        std::istringstream in(read_file(v2 + "/cpu.max"));
        std::string q, p;
        in >> q >> p;
        current_quota = number(q);
        current_period = number(p);
    }
    auto set = [&](const char* key, int64_t value) {
        cpu.erase(key);  // a key given as null would keep emplace from writing
        cpu.emplace(key, value);
    };
    if (!quota && current_quota) set("quota", *current_quota);
    if (!period && current_period) set("period", *current_period);
    resources["cpu"] = std::move(cpu);
    return resources;
}

}  // namespace

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
                cgroup::systemd::resource_properties(with_cpu_pair(cg, resources), !cgroup::has_v1_hierarchies(cg.layout()));
            if (!props.empty()) cgroup::systemd::manager::connection().set_properties(s.systemd_unit, props);
        }
        cg.apply(settings);
    });
}

}  // namespace pieces::container
