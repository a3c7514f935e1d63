#include "core/cgroup/resources.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/cgroup/device_filter.h"

namespace pieces::cgroup {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw error(where + ": " + what); }

int64_t integer(const json& j, const std::string& where) {
    if (!j.is_number_integer()) fail(where, "expected an integer");
    if (j.is_number_unsigned()) return static_cast<int64_t>(std::min<uint64_t>(j.get<uint64_t>(), INT64_MAX));
    return j.get<int64_t>();
}

// Docker and others send 0 for "not set" in fields the spec makes optional: skip those, as the
// other runtimes do.
template <typename Fn>
void nonzero(const json& obj, const char* key, const std::string& where, Fn&& fn);

std::string text(const json& j, const std::string& where) {
    if (!j.is_string()) fail(where, "expected a string");
    return j.get<std::string>();
}

// Calls fn(value, "where.key") when obj has key (and it is not null).
template <typename Fn>
void with(const json& obj, const char* key, const std::string& where, Fn&& fn) {
    if (!obj.is_object()) return;
    auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) fn(*it, where + "." + key);
}

template <typename Fn>
void nonzero(const json& obj, const char* key, const std::string& where, Fn&& fn) {
    with(obj, key, where, [&](const json& v, const std::string& w) {
        int64_t n = integer(v, w);
        if (n != 0) fn(n);
    });
}

// "maj:min" for a device entry of a blockIO list.
std::string device_of(const json& d, const std::string& where) {
    int64_t major = 0, minor = 0;
    with(d, "major", where, [&](const json& v, const std::string& w) { major = integer(v, w); });
    with(d, "minor", where, [&](const json& v, const std::string& w) { minor = integer(v, w); });
    return std::to_string(major) + ":" + std::to_string(minor);
}

// Calls fn(entry, "where[i]") for each entry of a list.
template <typename Fn>
void each(const json& list, const std::string& where, Fn&& fn) {
    if (!list.is_array()) fail(where, "expected an array");
    size_t i = 0;
    for (const json& entry : list) fn(entry, where + "[" + std::to_string(i++) + "]");
}

// The "maj:min" and rate of each entry of a blockIO throttle list.
std::vector<std::pair<std::string, int64_t>> device_rates(const json& list, const std::string& where) {
    std::vector<std::pair<std::string, int64_t>> out;
    each(list, where, [&](const json& d, const std::string& dw) {
        int64_t rate = 0;
        with(d, "rate", dw, [&](const json& v, const std::string& vw) { rate = integer(v, vw); });
        out.emplace_back(device_of(d, dw), rate);
    });
    return out;
}

// The page size and limit of each hugepageLimits entry.
std::vector<std::pair<std::string, int64_t>> hugepage_limits(const json& list, const std::string& where) {
    std::vector<std::pair<std::string, int64_t>> out;
    each(list, where, [&](const json& h, const std::string& w) {
        std::string size;
        int64_t limit = 0;
        with(h, "pageSize", w, [&](const json& v, const std::string& vw) { size = text(v, vw); });
        with(h, "limit", w, [&](const json& v, const std::string& vw) { limit = integer(v, vw); });
        if (size.empty()) fail(w + ".pageSize", "is required");
        out.emplace_back(size, limit);
    });
    return out;
}

std::string device_rule_text(const json& d, const std::string& where) {
    std::string type = "a", access = "rwm";
    std::string major = "*", minor = "*";
    with(d, "type", where, [&](const json& v, const std::string& w) { type = text(v, w); });
    with(d, "access", where, [&](const json& v, const std::string& w) { access = text(v, w); });
    with(d, "major", where, [&](const json& v, const std::string& w) {
        int64_t m = integer(v, w);
        if (m >= 0) major = std::to_string(m);
    });
    with(d, "minor", where, [&](const json& v, const std::string& w) {
        int64_t m = integer(v, w);
        if (m >= 0) minor = std::to_string(m);
    });
    if (type != "a" && type != "c" && type != "b") fail(where + ".type", "unknown device type \"" + type + "\"");
    if (access.empty() || access.find_first_not_of("rwm") != std::string::npos)
        fail(where + ".access", "must be made of r, w and m");
    // "a" means every device: the kernel takes it alone.
    return type == "a" ? "a" : type + " " + major + ":" + minor + " " + access;
}

// linux.resources.devices as v1 devices.allow/deny writes, the runtime's own allows last. On
// cgroup2 the same list is compiled into a device program (see apply_v2).
void device_settings(const json& list, const std::string& where, std::vector<setting>& out) {
    each(list, where, [&](const json& d, const std::string& w) {
        bool allow = false;
        with(d, "allow", w, [&](const json& v, const std::string& vw) {
            if (!v.is_boolean()) fail(vw, "expected a boolean");
            allow = v.get<bool>();
        });
        out.push_back({"devices", allow ? "devices.allow" : "devices.deny", device_rule_text(d, w)});
    });
    for (const std::string& rule : default_device_allows()) out.push_back({"devices", "devices.allow", rule});
}

// memory.checkBeforeUpdate: a boolean, false when absent.
bool check_before_update(const json& m, const std::string& where) {
    bool check = false;
    with(m, "checkBeforeUpdate", where, [&](const json& v, const std::string& w) {
        if (!v.is_boolean()) fail(w, "expected a boolean");
        check = v.get<bool>();
    });
    return check;
}

}  // namespace

std::vector<setting> rdma_settings(const json& rdma, const std::string& where) {
    std::vector<setting> out;
    if (!rdma.is_object()) fail(where, "expected an object of devices");
    for (const auto& [device, limits] : rdma.items()) {
        std::string w = where + "." + device;
        if (device.empty() || device.find_first_of(" \t\n") != std::string::npos) fail(w, "not a device name");
        if (!limits.is_object()) fail(w, "expected an object");
        std::string line = device;
        auto limit = [&](const char* key, const char* knob) {
            with(limits, key, w, [&](const json& v, const std::string& vw) {
                int64_t n = integer(v, vw);
                if (n < 0 || n > UINT32_MAX) fail(vw, "must be between 0 and 4294967295");
                line += std::string(" ") + knob + "=" + std::to_string(n);
            });
        };
        limit("hcaHandles", "hca_handle");
        limit("hcaObjects", "hca_object");
        // A device with neither limit leaves the kernel's default (max) in place.
        if (line == device) continue;
        out.push_back({"rdma", "rdma.max", line});
        out.back().required = true;
    }
    return out;
}

std::string memory_usage_refusal(int64_t limit, uint64_t usage, uint64_t peak) {
    if (limit <= 0 || static_cast<uint64_t>(limit) > usage) return "";
    return "unable to set memory limit to " + std::to_string(limit) + " (current usage: " + std::to_string(usage) +
           ", peak usage: " + std::to_string(peak) + ")";
}

std::vector<std::string> default_device_allows() {
    return {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
            "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"};
}

std::vector<setting> v2_settings(const json& r) {
    std::vector<setting> out;
    const std::string base = "linux.resources";
    if (r.is_null()) return out;
    if (!r.is_object()) fail(base, "expected an object");
    auto limit_text = [](int64_t n) { return n < 0 ? std::string("max") : std::to_string(n); };
    with(r, "memory", base, [&](const json& m, const std::string& where) {
        int64_t limit = 0, swap = 0;
        bool check = check_before_update(m, where);
        nonzero(m, "limit", where, [&](int64_t n) {
            limit = n;
            out.push_back({"memory", "memory.max", limit_text(n)});
            out.back().check_usage = check && n > 0;
        });
        nonzero(m, "swap", where, [&](int64_t n) { swap = n; });
        if (swap != 0) {
            // cgroup2 limits swap alone; the spec's swap is memory plus swap.
            if (swap < 0 || limit < 0) {
                out.push_back({"memory", "memory.swap.max", "max"});
            } else if (limit == 0) {
                fail(where + ".swap", "needs memory.limit on cgroup v2");
            } else if (swap < limit) {
                fail(where + ".swap", "must be at least memory.limit");
            } else {
                out.push_back({"memory", "memory.swap.max", std::to_string(swap - limit)});
            }
        }
        nonzero(m, "reservation", where, [&](int64_t n) { out.push_back({"memory", "memory.low", limit_text(n)}); });
    });
    with(r, "cpu", base, [&](const json& c, const std::string& where) {
        nonzero(c, "shares", where, [&](int64_t n) {
            out.push_back({"cpu", "cpu.weight", std::to_string(1 + ((n - 2) * 9999) / 262142)});
        });
        int64_t quota = 0, period = 0;
        nonzero(c, "quota", where, [&](int64_t n) { quota = n; });
        nonzero(c, "period", where, [&](int64_t n) { period = n; });
        if (quota != 0 || period != 0)
            out.push_back({"cpu", "cpu.max", (quota > 0 ? std::to_string(quota) : "max") + " " +
                                                 std::to_string(period != 0 ? period : 100000)});
        nonzero(c, "burst", where, [&](int64_t n) { out.push_back({"cpu", "cpu.max.burst", std::to_string(n)}); });
        with(c, "idle", where, [&](const json& v, const std::string& w) {
            out.push_back({"cpu", "cpu.idle", std::to_string(integer(v, w))});
        });
        with(c, "cpus", where, [&](const json& v, const std::string& w) {
            if (!text(v, w).empty()) out.push_back({"cpuset", "cpuset.cpus", text(v, w)});
        });
        with(c, "mems", where, [&](const json& v, const std::string& w) {
            if (!text(v, w).empty()) out.push_back({"cpuset", "cpuset.mems", text(v, w)});
        });
    });
    with(r, "pids", base, [&](const json& p, const std::string& where) {
        nonzero(p, "limit", where, [&](int64_t l) { out.push_back({"pids", "pids.max", limit_text(l)}); });
    });
    with(r, "blockIO", base, [&](const json& b, const std::string& where) {
        // io.weight takes 1-10000; BFQ's io.bfq.weight the blkio range as it is.
        auto io_weight = [](int64_t w) { return std::to_string(1 + (w - 10) * 9999 / 990); };
        auto weight = [&](const std::string& target, int64_t n) {
            out.push_back({"io", "io.weight", target + " " + io_weight(n)});
            out.back().preferred_file = "io.bfq.weight";
            out.back().preferred_value = target + " " + std::to_string(n);
        };
        nonzero(b, "weight", where, [&](int64_t n) { weight("default", n); });
        with(b, "weightDevice", where, [&](const json& list, const std::string& w) {
            size_t i = 0;
            for (const json& d : list) {
                std::string dw = w + "[" + std::to_string(i++) + "]";
                nonzero(d, "weight", dw, [&](int64_t n) { weight(device_of(d, dw), n); });
            }
        });
        const std::pair<const char*, const char*> throttles[] = {
            {"throttleReadBpsDevice", "rbps"}, {"throttleWriteBpsDevice", "wbps"},
            {"throttleReadIOPSDevice", "riops"}, {"throttleWriteIOPSDevice", "wiops"}};
        for (const auto& [key, knob] : throttles) {
            with(b, key, where, [&, knob = knob](const json& list, const std::string& w) {
                for (const auto& [dev, rate] : device_rates(list, w))
                    out.push_back({"io", "io.max", dev + " " + knob + "=" + std::to_string(rate)});
            });
        }
    });
    with(r, "hugepageLimits", base, [&](const json& list, const std::string& where) {
        for (const auto& [size, limit] : hugepage_limits(list, where))
            out.push_back({"hugetlb", "hugetlb." + size + ".max", std::to_string(limit)});
    });
    with(r, "devices", base, [&](const json& list, const std::string& where) {
        // No rules, no program: the cgroup keeps what its parent allows.
        if (!list.empty()) device_settings(list, where, out);
    });
    with(r, "rdma", base, [&](const json& rdma, const std::string& where) {
        for (setting& s : rdma_settings(rdma, where)) out.push_back(std::move(s));
    });
    with(r, "unified", base, [&](const json& u, const std::string& where) {
        if (!u.is_object()) fail(where, "expected an object");
        for (const auto& [file, value] : u.items()) {
            if (file.find('/') != std::string::npos || file.find("..") != std::string::npos || file.find('.') == std::string::npos)
                fail(where + "." + file, "not a cgroup2 interface file");
            out.push_back({file.substr(0, file.find('.')), file, text(value, where + "." + file)});
        }
    });
    return out;
}

std::pair<std::string, std::string> setting::target(const std::string& dir) const {
    if (!preferred_file.empty() && ::access((dir + "/" + preferred_file).c_str(), F_OK) == 0)
        return {preferred_file, preferred_value};
    return {file, value};
}

void apply_v2(const std::string& dir, const std::vector<setting>& settings) {
    std::vector<device_rule> devices;
    for (const setting& s : settings) {
        if (s.controller == "devices") {
            devices.push_back(parse_device_rule(s.file == "devices.allow", s.value));
            continue;
        }
        auto [file, value] = s.target(dir);
        with_context("set " + file + " to " + quote(value), [&] { write_file(dir + "/" + file, value); });
    }
    // cgroup2 has no device files: the rules become a BPF program on the directory.
    if (!devices.empty())
        attach_device_filter(open_path(dir, O_RDONLY | O_DIRECTORY), device_filter_program(devices));
}

std::vector<setting> v1_settings(const json& r) {
    std::vector<setting> out;
    const std::string base = "linux.resources";
    if (r.is_null()) return out;
    if (!r.is_object()) fail(base, "expected an object");

    with(r, "memory", base, [&](const json& m, const std::string& where) {
        // The limit goes before memsw: the kernel keeps memsw >= limit at every step.
        bool check = check_before_update(m, where);
        nonzero(m, "limit", where, [&](int64_t n) {
            out.push_back({"memory", "memory.limit_in_bytes", std::to_string(n)});
            out.back().check_usage = check && n > 0;
        });
        nonzero(m, "swap", where, [&](int64_t n) { out.push_back({"memory", "memory.memsw.limit_in_bytes", std::to_string(n)}); });
        nonzero(m, "reservation", where, [&](int64_t n) { out.push_back({"memory", "memory.soft_limit_in_bytes", std::to_string(n)}); });
        with(m, "swappiness", where, [&](const json& v, const std::string& w) {
            int64_t s = integer(v, w);
            if (s < 0 || s > 100) fail(w, "must be between 0 and 100");
            out.push_back({"memory", "memory.swappiness", std::to_string(s)});
        });
        with(m, "disableOOMKiller", where, [&](const json& v, const std::string& w) {
            if (!v.is_boolean()) fail(w, "expected a boolean");
            if (v.get<bool>()) out.push_back({"memory", "memory.oom_control", "1"});
        });
    });
    with(r, "cpu", base, [&](const json& c, const std::string& where) {
        nonzero(c, "shares", where, [&](int64_t n) { out.push_back({"cpu", "cpu.shares", std::to_string(n)}); });
        // The period before the quota: a quota is checked against the period in force.
        nonzero(c, "period", where, [&](int64_t n) { out.push_back({"cpu", "cpu.cfs_period_us", std::to_string(n)}); });
        nonzero(c, "quota", where, [&](int64_t n) { out.push_back({"cpu", "cpu.cfs_quota_us", std::to_string(n)}); });
        nonzero(c, "burst", where, [&](int64_t n) { out.push_back({"cpu", "cpu.cfs_burst_us", std::to_string(n)}); });
        nonzero(c, "realtimePeriod", where, [&](int64_t n) { out.push_back({"cpu", "cpu.rt_period_us", std::to_string(n)}); });
        nonzero(c, "realtimeRuntime", where, [&](int64_t n) { out.push_back({"cpu", "cpu.rt_runtime_us", std::to_string(n)}); });
        with(c, "idle", where, [&](const json& v, const std::string& w) {
            out.push_back({"cpu", "cpu.idle", std::to_string(integer(v, w))});
        });
        with(c, "cpus", where, [&](const json& v, const std::string& w) {
            std::string s = text(v, w);
            if (!s.empty()) out.push_back({"cpuset", "cpuset.cpus", s});
        });
        with(c, "mems", where, [&](const json& v, const std::string& w) {
            std::string s = text(v, w);
            if (!s.empty()) out.push_back({"cpuset", "cpuset.mems", s});
        });
    });
    with(r, "pids", base, [&](const json& p, const std::string& where) {
        nonzero(p, "limit", where, [&](int64_t l) { out.push_back({"pids", "pids.max", l > 0 ? std::to_string(l) : "max"}); });
    });
    with(r, "blockIO", base, [&](const json& b, const std::string& where) {
        nonzero(b, "weight", where, [&](int64_t n) {
            out.push_back({"blkio", "blkio.weight", std::to_string(n)});
            out.back().preferred_file = "blkio.bfq.weight";
            out.back().preferred_value = out.back().value;
        });
        nonzero(b, "leafWeight", where, [&](int64_t n) { out.push_back({"blkio", "blkio.leaf_weight", std::to_string(n)}); });
        with(b, "weightDevice", where, [&](const json& list, const std::string& w) {
            size_t i = 0;
            for (const json& d : list) {
                std::string dw = w + "[" + std::to_string(i++) + "]";
                with(d, "weight", dw, [&](const json& v, const std::string& vw) {
                    out.push_back({"blkio", "blkio.weight_device", device_of(d, dw) + " " + std::to_string(integer(v, vw))});
                    out.back().preferred_file = "blkio.bfq.weight_device";
                    out.back().preferred_value = out.back().value;
                });
                with(d, "leafWeight", dw, [&](const json& v, const std::string& vw) {
                    out.push_back({"blkio", "blkio.leaf_weight_device", device_of(d, dw) + " " + std::to_string(integer(v, vw))});
                });
            }
        });
        const std::pair<const char*, const char*> throttles[] = {
            {"throttleReadBpsDevice", "blkio.throttle.read_bps_device"},
            {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device"},
            {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device"},
            {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"},
        };
        for (const auto& [key, file] : throttles) {
            with(b, key, where, [&, file = file](const json& list, const std::string& w) {
                for (const auto& [dev, rate] : device_rates(list, w))
                    out.push_back({"blkio", file, dev + " " + std::to_string(rate)});
            });
        }
    });
    with(r, "hugepageLimits", base, [&](const json& list, const std::string& where) {
        for (const auto& [size, limit] : hugepage_limits(list, where))
            out.push_back({"hugetlb", "hugetlb." + size + ".limit_in_bytes", std::to_string(limit)});
    });
    with(r, "network", base, [&](const json& n, const std::string& where) {
        with(n, "classID", where, [&](const json& v, const std::string& w) {
            out.push_back({"net_cls", "net_cls.classid", std::to_string(integer(v, w))});
        });
        with(n, "priorities", where, [&](const json& list, const std::string& w) {
            size_t i = 0;
            for (const json& p : list) {
                std::string pw = w + "[" + std::to_string(i++) + "]";
                std::string name;
                int64_t prio = 0;
                with(p, "name", pw, [&](const json& v, const std::string& vw) { name = text(v, vw); });
                with(p, "priority", pw, [&](const json& v, const std::string& vw) { prio = integer(v, vw); });
                out.push_back({"net_prio", "net_prio.ifpriomap", name + " " + std::to_string(prio)});
            }
        });
    });
    with(r, "devices", base, [&](const json& list, const std::string& where) { device_settings(list, where, out); });
    with(r, "rdma", base, [&](const json& rdma, const std::string& where) {
        for (setting& s : rdma_settings(rdma, where)) out.push_back(std::move(s));
    });
    return out;
}

}  // namespace pieces::cgroup
