// pause, resume and update: commands over a container's cgroups.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/units.h"
#include "core/container/events.h"
#include "core/container/lifecycle.h"
#include "puncker/commands.h"

namespace puncker {
namespace {

// "64m", "1G", "1048576": bytes, with the k/m/g/t/p suffixes (powers of 1024) runc takes, or
// -1 (no limit).
int64_t parse_bytes(const std::string& text, const std::string& flag) {
    if (text == "-1") return -1;
    if (auto bytes = pieces::parse_byte_size(text)) return *bytes;
    throw pieces::error("--" + flag + ": not a size: " + pieces::quote(text));
}

}  // namespace

command add_pause(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("pause", "freeze every process of a container");
    auto id = std::make_shared<std::string>();
    sub->add_option("id", *id, "container id")->required();
    return {sub, [id, &ctx] { pieces::container::pause(ctx.root, *id); }};
}

command add_resume(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("resume", "thaw a paused container");
    auto id = std::make_shared<std::string>();
    sub->add_option("id", *id, "container id")->required();
    return {sub, [id, &ctx] { pieces::container::resume(ctx.root, *id); }};
}

command add_events(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("events", "print a container's statistics and OOM events as JSON lines");
    auto id = std::make_shared<std::string>();
    auto once = std::make_shared<bool>(false);
    auto interval = std::make_shared<std::string>("5s");
    sub->add_flag("--stats", *once, "print the statistics once and exit");
    sub->add_option("--interval", *interval, "time between two statistics events (e.g. 500ms, 5s)");
    sub->add_option("id", *id, "container id")->required();
    return {sub, [=, &ctx] {
                // Go's duration notation, as runc reads it ("500ms", "5s", "1m30s").
                int64_t nanoseconds = pieces::with_context("--interval", [&] { return pieces::parse_duration(*interval); });
                if (nanoseconds <= 0) throw pieces::error("--interval: must be more than zero");
                if (*once) {
                    print_json(pieces::container::stats_event(ctx.root, *id), -1);
                    return;
                }
                auto every = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(nanoseconds));
                pieces::container::stream_events(ctx.root, *id, std::max(every, std::chrono::milliseconds(1)),
                                                 [](const nlohmann::json& event) {
                                                     print_json(event, -1);
                                                     std::fflush(stdout);
                                                 });
            }};
}

command add_update(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("update", "change a container's resource limits");
    struct flags {
        std::string id, resources, memory, memory_swap, memory_reservation, kernel_memory, kernel_memory_tcp;
        std::string cpuset_cpus, cpuset_mems;
        std::optional<int64_t> cpu_quota, cpu_period, cpu_share, cpu_rt_period, cpu_rt_runtime, pids_limit, blkio_weight;
    };
    auto f = std::make_shared<flags>();
    sub->add_option("-r,--resources", f->resources, "a linux.resources JSON file, or - for stdin");
    sub->add_option("--memory", f->memory, "memory limit (bytes, or with k/m/g)");
    sub->add_option("--memory-swap", f->memory_swap, "memory + swap limit");
    sub->add_option("--memory-reservation", f->memory_reservation, "memory soft limit");
    sub->add_option("--kernel-memory", f->kernel_memory, "ignored: kernel memory limits are gone from current kernels");
    sub->add_option("--kernel-memory-tcp", f->kernel_memory_tcp, "ignored, as --kernel-memory");
    sub->add_option("--cpu-quota", f->cpu_quota, "CFS quota in microseconds");
    sub->add_option("--cpu-period", f->cpu_period, "CFS period in microseconds");
    sub->add_option("--cpu-share", f->cpu_share, "CPU shares");
    sub->add_option("--cpu-rt-period", f->cpu_rt_period, "realtime period in microseconds");
    sub->add_option("--cpu-rt-runtime", f->cpu_rt_runtime, "realtime runtime in microseconds");
    sub->add_option("--cpuset-cpus", f->cpuset_cpus, "CPUs to run on (0-3,5)");
    sub->add_option("--cpuset-mems", f->cpuset_mems, "memory nodes to use");
    sub->add_option("--pids-limit", f->pids_limit, "maximum number of processes");
    sub->add_option("--blkio-weight", f->blkio_weight, "block IO weight (10-1000)");
    sub->add_option("id", f->id, "container id")->required();
    return {sub, [f, &ctx] {
                nlohmann::json r = nlohmann::json::object();
                if (!f->resources.empty()) {
                    std::string text = f->resources == "-" ? pieces::read_all(STDIN_FILENO) : pieces::read_file(f->resources);
                    r = nlohmann::json::parse(text, nullptr, false);
                    if (r.is_discarded() || !r.is_object())
                        throw pieces::error("--resources: not a JSON object of linux.resources");
                }
                auto bytes = [&](const std::string& v, const char* flag, const char* group, const char* key) {
                    if (!v.empty()) r[group][key] = parse_bytes(v, flag);
                };
                bytes(f->memory, "memory", "memory", "limit");
                bytes(f->memory_swap, "memory-swap", "memory", "swap");
                bytes(f->memory_reservation, "memory-reservation", "memory", "reservation");
                auto number = [&](const std::optional<int64_t>& v, const char* group, const char* key) {
                    if (v) r[group][key] = *v;
                };
                number(f->cpu_quota, "cpu", "quota");
                number(f->cpu_period, "cpu", "period");
                number(f->cpu_share, "cpu", "shares");
                number(f->cpu_rt_period, "cpu", "realtimePeriod");
                number(f->cpu_rt_runtime, "cpu", "realtimeRuntime");
                number(f->pids_limit, "pids", "limit");
                number(f->blkio_weight, "blockIO", "weight");
                if (!f->cpuset_cpus.empty()) r["cpu"]["cpus"] = f->cpuset_cpus;
                if (!f->cpuset_mems.empty()) r["cpu"]["mems"] = f->cpuset_mems;
                pieces::container::update(ctx.root, f->id, r);
            }};
}

}  // namespace puncker
