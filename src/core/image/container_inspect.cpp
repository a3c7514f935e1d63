#include "core/image/container_inspect.h"

#include "core/base/signals.h"
#include "core/image/image.h"

namespace pieces::image {

using json = nlohmann::json;

json docker_config(const json& runtime, const run_request& r, const json& bundle, const std::map<std::string, std::string>& labels,
                   int stop_signal) {
    json entrypoint = r.entrypoint ? json(*r.entrypoint) : runtime.value("Entrypoint", json());
    json cmd = !r.cmd.empty() ? json(r.cmd) : (r.entrypoint ? json() : runtime.value("Cmd", json()));
    json out = {{"Hostname", bundle.value("hostname", "")},
                {"User", !r.user.empty() ? r.user : runtime.value("User", std::string())},
                {"Tty", r.tty},
                {"OpenStdin", r.interactive},
                {"Env", bundle["process"].value("env", json::array())},
                {"Cmd", cmd},
                {"Image", r.image},
                {"WorkingDir", !r.workdir.empty() ? r.workdir : runtime.value("WorkingDir", std::string())},
                {"Entrypoint", entrypoint},
                {"Labels", labels},
                {"StopSignal", signal_name(stop_signal)}};
    if (r.stop_timeout) out["StopTimeout"] = *r.stop_timeout;
    return out;
}

json docker_host_config(const run_request& r) {
    const resource_limits& res = r.resources;
    json binds = json::array();
    for (const auto& v : r.volumes) binds.push_back(v.source + ":" + v.destination + (v.read_only ? ":ro" : ""));
    json tmpfs = json::object();
    for (const auto& t : r.tmpfs) {
        std::string opts;
        for (const auto& o : t.options) opts += (opts.empty() ? "" : ",") + o;
        tmpfs[t.destination] = opts;
    }
    return {{"Binds", binds},
            {"NetworkMode", r.host_network ? "host" : "none"},
            {"AutoRemove", r.remove},
            {"Privileged", r.privileged},
            {"ReadonlyRootfs", r.read_only},
            {"CapAdd", r.cap_add},
            {"CapDrop", r.cap_drop},
            {"Tmpfs", tmpfs},
            {"Memory", res.memory.value_or(0)},
            {"MemorySwap", res.memory_swap ? *res.memory_swap : (res.memory ? 2 * *res.memory : 0)},
            {"MemoryReservation", res.memory_reservation.value_or(0)},
            {"NanoCpus", res.cpu_quota ? *res.cpu_quota * 10000 : 0},  // quota per 100000 µs -> billionths of a CPU
            {"CpuShares", res.cpu_shares.value_or(0)},
            {"CpusetCpus", res.cpuset_cpus},
            {"CpusetMems", res.cpuset_mems},
            {"PidsLimit", res.pids_limit ? json(*res.pids_limit) : json()}};
}

json docker_mounts(const run_request& r, const std::vector<std::pair<std::string, std::string>>& image_volumes) {
    json out = json::array();
    for (const auto& [destination, source] : image_volumes)
        out.push_back({{"Type", "volume"}, {"Source", source}, {"Destination", destination}, {"Mode", ""}, {"RW", true}, {"Propagation", ""}});
    for (const auto& v : r.volumes)
        out.push_back({{"Type", "bind"}, {"Source", v.source}, {"Destination", v.destination}, {"Mode", v.read_only ? "ro" : ""},
                       {"RW", !v.read_only}, {"Propagation", "rprivate"}});
    return out;
}

json inspect_document(const json& record, const container_info& c, const std::string& started) {
    json args = json::array();
    std::string path;
    json state = {{"Status", c.state},
                  {"Running", c.state == "running" || c.state == "paused"},
                  {"Paused", c.state == "paused"},
                  {"Pid", c.pid},
                  {"ExitCode", c.exit_code < 0 ? 0 : c.exit_code}};
    std::string started_at = record.value("started", started);
    if (!started_at.empty()) state["StartedAt"] = started_at;
    if (record.contains("finished")) state["FinishedAt"] = record["finished"];
    json config = record.value("Config", json::object());
    std::vector<std::string> command = string_list(config.value("Entrypoint", json()));
    for (const auto& a : string_list(config.value("Cmd", json()))) command.push_back(a);
    if (!command.empty()) {
        path = command.front();
        args = std::vector<std::string>(command.begin() + 1, command.end());
    }
    return {{"Id", c.id},
            {"Created", c.created},
            {"Path", path},
            {"Args", args},
            {"State", state},
            {"Image", c.image_id},
            {"Name", "/" + c.name},
            {"HostConfig", record.value("HostConfig", json::object())},
            {"Mounts", record.value("Mounts", json::array())},
            {"Config", config}};
}

}  // namespace pieces::image
