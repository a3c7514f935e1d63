#include "core/cgroup/systemd.h"

#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "core/base/dynamic_library.h"
#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/device_filter.h"

namespace pieces::cgroup::systemd {
namespace {

using json = nlohmann::json;

constexpr const char* destination = "org.freedesktop.systemd1";
constexpr const char* manager_path = "/org/freedesktop/systemd1";
constexpr const char* manager_iface = "org.freedesktop.systemd1.Manager";
constexpr uint64_t infinity = std::numeric_limits<uint64_t>::max();
constexpr uint64_t job_timeout_usec = 30'000'000;

// The sd-bus calls we make, resolved from libsystemd.so.0 the first time they are needed.
struct bus_api {
    int (*open_system)(sd_bus**);
    int (*bus_new)(sd_bus**);
    int (*set_address)(sd_bus*, const char*);
    int (*start)(sd_bus*);
    int (*is_open)(sd_bus*);
    sd_bus* (*flush_close_unref)(sd_bus*);
    int (*new_method_call)(sd_bus*, sd_bus_message**, const char*, const char*, const char*, const char*);
    int (*append)(sd_bus_message*, const char*, ...);
    int (*append_array)(sd_bus_message*, char, const void*, size_t);
    int (*open_container)(sd_bus_message*, char, const char*);
    int (*close_container)(sd_bus_message*);
    int (*call)(sd_bus*, sd_bus_message*, uint64_t, sd_bus_error*, sd_bus_message**);
    int (*read)(sd_bus_message*, const char*, ...);
    sd_bus_message* (*message_unref)(sd_bus_message*);
    void (*error_free)(sd_bus_error*);
    int (*error_has_name)(const sd_bus_error*, const char*);
    int (*match_signal_async)(sd_bus*, sd_bus_slot**, const char*, const char*, const char*, const char*,
                              sd_bus_message_handler_t, sd_bus_message_handler_t, void*);
    sd_bus_slot* (*slot_unref)(sd_bus_slot*);
    int (*process)(sd_bus*, sd_bus_message**);
    int (*wait)(sd_bus*, uint64_t);
    int (*get_property_string)(sd_bus*, const char*, const char*, const char*, const char*, sd_bus_error*, char**);
};

bus_api load() {
    void* lib = open_library("libsystemd.so.0", "--systemd-cgroup needs libsystemd to reach systemd");
    bus_api a{};
    resolve_symbol(lib, a.open_system, "sd_bus_open_system", "libsystemd");
    resolve_symbol(lib, a.bus_new, "sd_bus_new", "libsystemd");
    resolve_symbol(lib, a.set_address, "sd_bus_set_address", "libsystemd");
    resolve_symbol(lib, a.start, "sd_bus_start", "libsystemd");
    resolve_symbol(lib, a.is_open, "sd_bus_is_open", "libsystemd");
    resolve_symbol(lib, a.flush_close_unref, "sd_bus_flush_close_unref", "libsystemd");
    resolve_symbol(lib, a.new_method_call, "sd_bus_message_new_method_call", "libsystemd");
    resolve_symbol(lib, a.append, "sd_bus_message_append", "libsystemd");
    resolve_symbol(lib, a.append_array, "sd_bus_message_append_array", "libsystemd");
    resolve_symbol(lib, a.open_container, "sd_bus_message_open_container", "libsystemd");
    resolve_symbol(lib, a.close_container, "sd_bus_message_close_container", "libsystemd");
    resolve_symbol(lib, a.call, "sd_bus_call", "libsystemd");
    resolve_symbol(lib, a.read, "sd_bus_message_read", "libsystemd");
    resolve_symbol(lib, a.message_unref, "sd_bus_message_unref", "libsystemd");
    resolve_symbol(lib, a.error_free, "sd_bus_error_free", "libsystemd");
    resolve_symbol(lib, a.error_has_name, "sd_bus_error_has_name", "libsystemd");
    resolve_symbol(lib, a.match_signal_async, "sd_bus_match_signal_async", "libsystemd");
    resolve_symbol(lib, a.slot_unref, "sd_bus_slot_unref", "libsystemd");
    resolve_symbol(lib, a.process, "sd_bus_process", "libsystemd");
    resolve_symbol(lib, a.wait, "sd_bus_wait", "libsystemd");
    resolve_symbol(lib, a.get_property_string, "sd_bus_get_property_string", "libsystemd");
    return a;
}

const bus_api& api() {
    static const bus_api a = load();  // once; concurrent first calls wait for it
    return a;
}

// Owners for what sd-bus hands out.
struct message_unref {
    void operator()(sd_bus_message* m) const { api().message_unref(m); }
};
using message_ptr = std::unique_ptr<sd_bus_message, message_unref>;
struct slot_unref {
    void operator()(sd_bus_slot* s) const { api().slot_unref(s); }
};
using slot_ptr = std::unique_ptr<sd_bus_slot, slot_unref>;
struct bus_error {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    ~bus_error() { api().error_free(&e); }
    // The D-Bus error's message when there is one, else the errno's text.
    std::string text(int r) const {
        if (e.message) return e.message;
        return std::error_code(-r, std::generic_category()).message();
    }
};

// sd-bus returns -errno: throw with `what` when r < 0.
int check(int r, const std::string& what) {
    if (r < 0) throw error(what + ": " + std::error_code(-r, std::generic_category()).message(), -r);
    return r;
}

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw error(where + ": " + what); }

// A new call of the systemd manager's method `member`.
message_ptr manager_method(sd_bus* bus, const char* member) {
    sd_bus_message* raw = nullptr;
    check(api().new_method_call(bus, &raw, destination, manager_path, manager_iface, member), "D-Bus message");
    return message_ptr(raw);
}

// The pieces of "slice:prefix:name", checked the way systemd_to_cgroupfs checks them.
std::vector<std::string> split_path(const std::string& cgroups_path) {
    std::vector<std::string> parts;
    std::istringstream ss(cgroups_path);
    std::string part;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    if (cgroups_path.empty()) parts = {"", "", ""};
    if (parts.size() == 2 && cgroups_path.back() == ':') parts.emplace_back();
    if (parts.size() != 3)
        throw error("cgroupsPath " + quote(cgroups_path) + ": expected slice:prefix:name with --systemd-cgroup");
    return parts;
}


// One value into an open message, inside a variant of its signature.
void append_value(sd_bus_message* m, const value& v) {
    const bus_api& a = api();
    auto open = [&](const char* sig) { check(a.open_container(m, 'v', sig), "D-Bus message"); };
    if (const bool* b = std::get_if<bool>(&v)) {
        open("b");
        check(a.append(m, "b", static_cast<int>(*b)), "D-Bus message");
    } else if (const uint64_t* t = std::get_if<uint64_t>(&v)) {
        open("t");
        check(a.append(m, "t", *t), "D-Bus message");
    } else if (const std::string* s = std::get_if<std::string>(&v)) {
        open("s");
        check(a.append(m, "s", s->c_str()), "D-Bus message");
    } else if (const auto* u = std::get_if<std::vector<uint32_t>>(&v)) {
        open("au");
        check(a.append_array(m, 'u', u->data(), u->size() * sizeof(uint32_t)), "D-Bus message");
    } else if (const auto* y = std::get_if<std::vector<uint8_t>>(&v)) {
        open("ay");
        check(a.append_array(m, 'y', y->data(), y->size()), "D-Bus message");
    } else {
        open("a(ss)");
        check(a.open_container(m, 'a', "(ss)"), "D-Bus message");
        for (const auto& [first, second] : std::get<std::vector<std::pair<std::string, std::string>>>(v))
            check(a.append(m, "(ss)", first.c_str(), second.c_str()), "D-Bus message");
        check(a.close_container(m), "D-Bus message");
    }
    check(a.close_container(m), "D-Bus message");
}

// An a(sv) array of properties.
void append_properties(sd_bus_message* m, const std::vector<property>& props) {
    const bus_api& a = api();
    check(a.open_container(m, 'a', "(sv)"), "D-Bus message");
    for (const property& p : props) {
        check(a.open_container(m, 'r', "sv"), "D-Bus message");
        check(a.append(m, "s", p.name.c_str()), "D-Bus message");
        append_value(m, p.v);
        check(a.close_container(m), "D-Bus message");
    }
    check(a.close_container(m), "D-Bus message");
}

uint64_t now_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// What the JobRemoved handler fills in for the job it waits for.
struct job_wait {
    std::string job;  ///< the job's object path, known once the method returns
    std::vector<std::pair<std::string, std::string>> removed;  ///< (job path, result) seen so far
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    uint32_t id = 0;
    const char* path = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (api().read(m, "uoss", &id, &path, &unit, &result) >= 0)
        static_cast<job_wait*>(userdata)->removed.emplace_back(path, result);
    return 0;
}

// Integer fields of linux.resources, skipping absent, null and zero ones as the cgroupfs path
// does (the translation there has already checked their types).
template <typename Fn>
void nonzero(const json& obj, const char* key, Fn&& fn) {
    if (!obj.is_object()) return;
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number_integer()) return;
    int64_t n = it->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
                                          : it->get<int64_t>();
    if (n != 0) fn(n);
}

uint64_t limit_value(int64_t n) { return n < 0 ? infinity : static_cast<uint64_t>(n); }

// The quota as systemd takes it: CPU time per second of wall time, in whole 10 ms steps
// (systemd's own granularity), rounded up so that the container never gets less than asked.
uint64_t quota_per_sec(int64_t quota, int64_t period) {
    if (quota <= 0 || static_cast<uint64_t>(quota) > infinity / 1'000'000) return infinity;
    uint64_t per_sec = static_cast<uint64_t>(quota) * 1'000'000 / static_cast<uint64_t>(period);
    if (per_sec % 10'000 != 0) per_sec = (per_sec / 10'000 + 1) * 10'000;
    return per_sec;
}

}  // namespace

bool booted() {
    struct stat st {};
    return ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {

// systemd tracks units in the name=systemd hierarchy where that is mounted here (v1 and hybrid
// hosts), else in cgroup2.
bool tracks_in_v1(const std::vector<hierarchy>& layout) {
    return std::any_of(layout.begin(), layout.end(), [](const hierarchy& h) {
        return !h.unified && std::find(h.controllers.begin(), h.controllers.end(), "name=systemd") != h.controllers.end();
    });
}

}  // namespace

std::string tracked_cgroup(pid_t pid, const std::vector<hierarchy>& layout) {
    // /proc/PID/cgroup lists every hierarchy the kernel has, mounted here or not ("0::" even
    // without cgroup2): the layout says which one is systemd's.
    bool v1 = tracks_in_v1(layout);
    for (const procfs::cgroup_membership& c : procfs::cgroups(std::to_string(pid)))
        if (v1 ? c.controllers == "name=systemd" : (c.hierarchy == 0 && c.controllers.empty())) return c.path;
    return "";
}

std::string tracked_dir(const group& cg) {
    if (!tracks_in_v1(cg.layout())) return cg.v2_dir();
    auto v1 = cg.v1_dirs();
    auto it = v1.find("name=systemd");
    return it == v1.end() ? "" : it->second;
}

bool unit_name::is_slice() const { return unit.ends_with(".slice"); }

unit_name unit_for(const std::string& cgroups_path, const std::string& id) {
    std::vector<std::string> parts = split_path(cgroups_path);
    unit_name u;
    u.slice = parts[0].empty() ? "system.slice" : parts[0];
    if (!u.slice.ends_with(".slice") || u.slice.size() <= 6)
        throw error("cgroupsPath " + quote(cgroups_path) + ": " + quote(u.slice) + " is not a slice");
    std::string name = parts[2].empty() ? id : parts[2];
    // Without a cgroupsPath the unit carries the runtime's name, clear of systemd's own scopes
    // ("init.scope") and of other managers' units.
    std::string prefix = cgroups_path.empty() ? "puncker" : parts[1];
    u.unit = name.ends_with(".slice") ? name : (prefix.empty() ? "" : prefix + "-") + name + ".scope";
    // systemd's unit names: at most 255 characters, ASCII letters, digits and ':' '-' '_' '.' '\\'.
    bool valid = u.unit.size() <= 255 && std::all_of(u.unit.begin(), u.unit.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || (c != '\0' && std::strchr(":-_.\\", c) != nullptr);
    });
    if (!valid) throw error("cgroupsPath " + quote(cgroups_path) + ": " + quote(u.unit) + " is not a valid systemd unit name");
    return u;
}

std::vector<uint8_t> cpu_mask(const std::string& list, const std::string& where) {
    std::vector<uint8_t> mask;
    std::istringstream ss(list);
    std::string range;
    while (std::getline(ss, range, ',')) {
        if (range.empty()) continue;
        size_t dash = range.find('-');
        unsigned long lo = 0, hi = 0;
        try {
            size_t used = 0;
            lo = std::stoul(range.substr(0, dash), &used);
            if (used != (dash == std::string::npos ? range.size() : dash)) throw std::invalid_argument(range);
            hi = lo;
            if (dash != std::string::npos) {
                hi = std::stoul(range.substr(dash + 1), &used);
                if (used != range.size() - dash - 1) throw std::invalid_argument(range);
            }
        } catch (const std::logic_error&) {
            fail(where, "not a list of numbers and ranges: " + quote(list));
        }
        if (hi < lo || hi >= 8192) fail(where, "bad range " + quote(range));
        if (mask.size() <= hi / 8) mask.resize(hi / 8 + 1, 0);
        for (unsigned long n = lo; n <= hi; ++n) mask[n / 8] = static_cast<uint8_t>(mask[n / 8] | (1u << (n % 8)));
    }
    return mask;
}

std::vector<property> device_properties(const std::vector<setting>& rules) {
    // Play the rules through bit by bit, as the kernel reads them: an "a" rule resets to allow-
    // or deny-by-default, and each later rule grants or takes away access bits.
    bool default_allow = true;
    std::vector<device_rule> allowed;  // deny-by-default: what is granted, per exact device pattern
    bool denied_some = false;          // allow-by-default: whether anything was taken away
    auto covers = [](const device_rule& wide, const device_rule& narrow) {
        return wide.type == narrow.type && (wide.major < 0 || wide.major == narrow.major) &&
               (wide.minor < 0 || wide.minor == narrow.minor);
    };
    for (const setting& s : rules) {
        if (s.controller != "devices") continue;
        device_rule r = parse_device_rule(s.file == "devices.allow", s.value);
        if (r.type == 'a') {
            default_allow = r.allow;
            allowed.clear();
            denied_some = false;
            continue;
        }
        if (default_allow) {
            if (!r.allow) denied_some = true;
            continue;
        }
        if (r.allow) {
            auto same = std::find_if(allowed.begin(), allowed.end(), [&](const device_rule& e) {
                return e.type == r.type && e.major == r.major && e.minor == r.minor;
            });
            if (same != allowed.end()) same->access |= r.access;
            else allowed.push_back(r);
            continue;
        }
        // A deny takes its bits from every grant it overlaps: from the devices it covers, and
        // from a wider grant it falls inside (systemd cannot list an exception to a pattern, so
        // the whole pattern loses those bits: closed rather than open).
        for (device_rule& e : allowed)
            if (covers(r, e) || covers(e, r)) e.access &= ~r.access;
        std::erase_if(allowed, [](const device_rule& e) { return e.access == 0; });
    }
    std::vector<std::pair<std::string, std::string>> allow;
    // systemd has no "allow everything but" either: such a list gets nothing from systemd, and
    // the cgroup's own rules, written after, grant what it allows.
    if (default_allow && !denied_some) return {{"DeviceAllow", allow}, {"DevicePolicy", std::string("auto")}};
    for (const device_rule& r : allowed) {
        std::string access;
        if (r.access & 2) access += 'r';
        if (r.access & 4) access += 'w';
        if (r.access & 1) access += 'm';
        std::string kind = r.type == 'c' ? "char" : "block";
        if (r.major < 0 && r.minor < 0) allow.emplace_back(kind + "-*", access);
        else if (r.minor < 0) allow.emplace_back(kind + "-" + std::to_string(r.major), access);
        else if (r.major >= 0) allow.emplace_back("/dev/" + kind + "/" + std::to_string(r.major) + ":" + std::to_string(r.minor), access);
        // "*:N" has no systemd form; the cgroup's own rules grant it.
    }
    // DeviceAllow first: set after the policy, it would leave the unit asking for a reload.
    return {{"DeviceAllow", std::move(allow)}, {"DevicePolicy", std::string("strict")}};
}

std::vector<property> resource_properties(const json& r, bool unified) {
    std::vector<property> out;
    if (!r.is_object()) return out;
    const json& memory = r.value("memory", json::object());
    const json& cpu = r.value("cpu", json::object());
    if (unified) {
        int64_t limit = 0;
        nonzero(memory, "limit", [&](int64_t n) {
            limit = n;
            out.push_back({"MemoryMax", limit_value(n)});
        });
        nonzero(memory, "reservation", [&](int64_t n) { out.push_back({"MemoryLow", limit_value(n)}); });
        // The spec's swap is memory plus swap; systemd's, like cgroup2's, is swap alone.
        nonzero(memory, "swap", [&](int64_t n) {
            if (n < 0 || limit < 0) out.push_back({"MemorySwapMax", infinity});
            else if (limit > 0 && n >= limit) out.push_back({"MemorySwapMax", static_cast<uint64_t>(n - limit)});
        });
        nonzero(cpu, "shares", [&](int64_t n) {
            out.push_back({"CPUWeight", static_cast<uint64_t>(1 + ((n - 2) * 9999) / 262142)});
        });
    } else {
        nonzero(memory, "limit", [&](int64_t n) { out.push_back({"MemoryLimit", limit_value(n)}); });
        nonzero(cpu, "shares", [&](int64_t n) { out.push_back({"CPUShares", static_cast<uint64_t>(n)}); });
    }
    int64_t quota = 0, period = 0;
    nonzero(cpu, "quota", [&](int64_t n) { quota = n; });
    nonzero(cpu, "period", [&](int64_t n) { period = n; });
    if (period > 0) out.push_back({"CPUQuotaPeriodUSec", static_cast<uint64_t>(period)});
    if (quota != 0) out.push_back({"CPUQuotaPerSecUSec", quota_per_sec(quota, period > 0 ? period : 100'000)});
    if (unified) {
        auto mask = [&](const char* key, const char* prop) {
            auto it = cpu.find(key);
            if (it != cpu.end() && it->is_string() && !it->get<std::string>().empty())
                out.push_back({prop, cpu_mask(it->get<std::string>(), std::string("linux.resources.cpu.") + key)});
        };
        mask("cpus", "AllowedCPUs");
        mask("mems", "AllowedMemoryNodes");
    }
    nonzero(r.value("pids", json::object()), "limit", [&](int64_t n) { out.push_back({"TasksMax", limit_value(n)}); });
    nonzero(r.value("blockIO", json::object()), "weight", [&](int64_t n) {
        if (unified) out.push_back({"IOWeight", static_cast<uint64_t>(1 + (n - 10) * 9999 / 990)});
        else out.push_back({"BlockIOWeight", static_cast<uint64_t>(n)});
    });
    // cgroup2 files given as they are: the ones systemd also writes become its properties, or
    // its next write of the controller would put its own values back.
    auto files = r.find("unified");
    if (unified && files != r.end() && files->is_object()) {
        for (const auto& [file, text] : files->items()) {
            if (!text.is_string()) continue;  // refused with a clear error by the cgroupfs translation
            std::string where = "linux.resources.unified." + file, v = text.get<std::string>();
            auto number = [&](const std::string& t) -> uint64_t {
                if (t == "max") return infinity;
                try {
                    size_t used = 0;
                    uint64_t n = std::stoull(t, &used);
                    if (used == t.size()) return n;
                } catch (const std::logic_error&) {
                }
                fail(where, "not a number or \"max\": " + quote(t));
            };
            static const std::pair<const char*, const char*> plain[] = {
                {"memory.high", "MemoryHigh"}, {"memory.min", "MemoryMin"},         {"memory.low", "MemoryLow"},
                {"memory.max", "MemoryMax"},   {"memory.swap.max", "MemorySwapMax"}, {"pids.max", "TasksMax"},
                {"cpu.weight", "CPUWeight"}};
            for (const auto& [name, prop] : plain)
                if (file == name) out.push_back({prop, number(v)});
            if (file == "cpu.max") {
                std::istringstream in(v);
                std::string q, p;
                in >> q >> p;
                uint64_t per = p.empty() ? 100'000 : number(p);
                if (per == 0 || per == infinity) fail(where, "bad period in " + quote(v));
                if (!p.empty()) out.push_back({"CPUQuotaPeriodUSec", per});
                uint64_t max = number(q);
                out.push_back({"CPUQuotaPerSecUSec",
                               max == infinity ? infinity
                                               : quota_per_sec(static_cast<int64_t>(std::min<uint64_t>(max, INT64_MAX)),
                                                               static_cast<int64_t>(per))});
            }
            if (file == "cpuset.cpus") out.push_back({"AllowedCPUs", cpu_mask(v, where)});
            if (file == "cpuset.mems") out.push_back({"AllowedMemoryNodes", cpu_mask(v, where)});
        }
    }
    auto devices = r.find("devices");
    if (devices != r.end() && devices->is_array() && !devices->empty()) {
        std::vector<setting> rules = v1_settings(json{{"devices", *devices}});
        for (property& p : device_properties(rules)) out.push_back(std::move(p));
    }
    return out;
}

std::vector<property> unit_properties(const unit_name& name, pid_t init, const std::string& id,
                                      const json& resources, bool unified) {
    std::vector<property> out{{"Description", "puncker container " + id}};
    if (!name.is_slice()) {
        out.push_back({"Slice", name.slice});
        // The container may run its own cgroup manager below: the scope is handed over whole.
        out.push_back({"Delegate", true});
        out.push_back({"PIDs", std::vector<uint32_t>{static_cast<uint32_t>(init)}});
    }
    out.push_back({"DefaultDependencies", false});
    // Unloaded once it ends, failed or not (an OOM kill can fail a scope): nothing is left in
    // `systemctl --failed`, and the name is free again.
    out.push_back({"CollectMode", std::string("inactive-or-failed")});
    out.push_back({"MemoryAccounting", true});
    out.push_back({"CPUAccounting", true});
    out.push_back({unified ? "IOAccounting" : "BlockIOAccounting", true});
    out.push_back({"TasksAccounting", true});
    for (property& p : resource_properties(resources, unified)) out.push_back(std::move(p));
    return out;
}

manager& manager::connection() {
    static std::optional<manager> shared;
    if (shared && !shared->open()) shared.reset();
    if (!shared) shared.emplace(connect());
    return *shared;
}

bool manager::open() {
    const bus_api& a = api();
    int r;
    while ((r = a.process(bus_, nullptr)) > 0) {
    }
    return r >= 0 && a.is_open(bus_) > 0;
}

manager manager::connect() {
    const bus_api& a = api();
    sd_bus* bus = nullptr;
    int r = a.open_system(&bus);
    if (r >= 0) return manager(bus);
    // No bus daemon: systemd also answers on its private socket, to root.
    std::string system_error = std::error_code(-r, std::generic_category()).message();
    struct stat st {};
    if (::stat("/run/systemd/private", &st) == 0) {
        check(a.bus_new(&bus), "D-Bus");
        manager m(bus);
        check(a.set_address(bus, "unix:path=/run/systemd/private"), "systemd's private socket");
        r = a.start(bus);
        if (r >= 0) return m;
        system_error += "; and systemd's private socket: " + std::error_code(-r, std::generic_category()).message();
    }
    throw error("--systemd-cgroup: cannot reach systemd over D-Bus: system bus: " + system_error);
}

manager::~manager() {
    if (bus_) api().flush_close_unref(bus_);
}

namespace {

// Calls a Manager method that queues a job (built by `fill`), then waits for the job to be
// removed. Returns the job's result ("done", "failed", ...), or "" when the method's error
// is `tolerated`.
template <typename Fill>
std::string call_job(sd_bus* bus, const char* method, const std::string& unit, Fill&& fill,
                     const char* tolerated = nullptr) {
    const bus_api& a = api();
    job_wait wait;
    sd_bus_slot* raw_slot = nullptr;
    // Listening before asking, since the job may be over before the reply reaches us. The bus
    // daemon takes the match before the call that follows it on the same connection, so its
    // reply need not be waited for.
    check(a.match_signal_async(bus, &raw_slot, destination, manager_path, manager_iface, "JobRemoved", on_job_removed,
                               nullptr, &wait),
          "listen for systemd's JobRemoved");
    slot_ptr slot(raw_slot);
    message_ptr m = manager_method(bus, method);
    fill(m.get());
    bus_error err;
    sd_bus_message* raw_reply = nullptr;
    int r = a.call(bus, m.get(), 0, &err.e, &raw_reply);
    message_ptr reply(raw_reply);
    if (r < 0) {
        if (tolerated && a.error_has_name(&err.e, tolerated)) return "";
        throw error(std::string("systemd ") + method + " " + unit + ": " + err.text(r), -r);
    }
    const char* job = nullptr;
    check(a.read(reply.get(), "o", &job), std::string("systemd ") + method + " reply");
    wait.job = job;
    uint64_t deadline = now_usec() + job_timeout_usec;
    for (;;) {
        for (const auto& [path, result] : wait.removed)
            if (path == wait.job) return result;
        r = check(a.process(bus, nullptr), "D-Bus");
        uint64_t now = now_usec();
        if (now >= deadline)
            throw error(std::string("systemd did not finish the ") + method + " job of " + unit + " within " +
                        std::to_string(job_timeout_usec / 1'000'000) + " s");
        if (r > 0) continue;
        r = a.wait(bus, deadline - now);
        if (r < 0 && r != -EINTR) check(r, "D-Bus");
    }
}

}  // namespace

std::vector<property> manager::supported(const std::vector<property>& props) {
    // Properties younger than some systemd still in use; the cgroup files carry them there.
    static const std::pair<const char*, int> since[] = {
        {"CPUQuotaPeriodUSec", 242}, {"AllowedCPUs", 244}, {"AllowedMemoryNodes", 244}};
    auto needs = [&](const property& p) {
        for (const auto& [name, version] : since)
            if (p.name == name) return version;
        return 0;
    };
    if (std::none_of(props.begin(), props.end(), [&](const property& p) { return needs(p) > 0; })) return props;
    if (version_ < 0) {
        bus_error err;
        char* text = nullptr;
        int r = api().get_property_string(bus_, destination, manager_path, manager_iface, "Version", &err.e, &text);
        version_ = r >= 0 && text ? std::atoi(text) : 0;  // "252.39-1~deb12u2" -> 252
        ::free(text);
    }
    std::vector<property> out;
    for (const property& p : props)
        if (needs(p) <= version_) out.push_back(p);
    return out;
}

void manager::start_transient(const std::string& unit, const std::vector<property>& wanted) {
    std::vector<property> props = supported(wanted);
    auto start = [&](const char* tolerated) {
        return call_job(
            bus_, "StartTransientUnit", unit,
            [&](sd_bus_message* m) {
                check(api().append(m, "ss", unit.c_str(), "replace"), "D-Bus message");
                append_properties(m, props);
                check(api().append(m, "a(sa(sv))", 0), "D-Bus message");
            },
            tolerated);
    };
    std::string result = start("org.freedesktop.systemd1.UnitExists");
    if (result.empty()) {
        // A unit of that name that ended badly stays loaded until its failure is reset (an
        // earlier container with the same name that was OOM-killed, say); one still running
        // is left alone and refuses the name again.
        reset_failed(unit);
        result = start(nullptr);
    }
    if (result != "done") throw error("systemd could not start " + unit + ": the start job's result is " + quote(result));
}

void manager::reset_failed(const std::string& unit) {
    const bus_api& a = api();
    message_ptr m = manager_method(bus_, "ResetFailedUnit");
    check(a.append(m.get(), "s", unit.c_str()), "D-Bus message");
    bus_error err;
    a.call(bus_, m.get(), 0, &err.e, nullptr);  // a unit that has not failed has nothing to reset
}

void manager::set_properties(const std::string& unit, const std::vector<property>& wanted) {
    std::vector<property> props = supported(wanted);
    const bus_api& a = api();
    message_ptr m = manager_method(bus_, "SetUnitProperties");
    check(a.append(m.get(), "sb", unit.c_str(), 1), "D-Bus message");
    append_properties(m.get(), props);
    bus_error err;
    int r = a.call(bus_, m.get(), 0, &err.e, nullptr);
    if (r < 0) throw error("systemd SetUnitProperties " + unit + ": " + err.text(r), -r);
}

void manager::stop(const std::string& unit) {
    std::string result = call_job(
        bus_, "StopUnit", unit,
        [&](sd_bus_message* m) { check(api().append(m, "ss", unit.c_str(), "replace"), "D-Bus message"); },
        "org.freedesktop.systemd1.NoSuchUnit");
    if (!result.empty() && result != "done")
        throw error("systemd could not stop " + unit + ": the stop job's result is " + quote(result));
}

std::string manager::control_group(const std::string& unit) {
    const bus_api& a = api();
    // GetUnit answers for loaded units only; a unit we started is loaded while it runs.
    bus_error err;
    sd_bus_message* raw_reply = nullptr;
    message_ptr m = manager_method(bus_, "GetUnit");
    check(a.append(m.get(), "s", unit.c_str()), "D-Bus message");
    int r = a.call(bus_, m.get(), 0, &err.e, &raw_reply);
    message_ptr reply(raw_reply);
    if (r < 0) throw error("systemd GetUnit " + unit + ": " + err.text(r), -r);
    const char* path = nullptr;
    check(a.read(reply.get(), "o", &path), "systemd GetUnit reply");
    bus_error perr;
    char* cg = nullptr;
    const char* iface = unit.ends_with(".slice") ? "org.freedesktop.systemd1.Slice" : "org.freedesktop.systemd1.Scope";
    r = a.get_property_string(bus_, destination, path, iface, "ControlGroup", &perr.e, &cg);
    if (r < 0) throw error("systemd ControlGroup of " + unit + ": " + perr.text(r), -r);
    std::string out = cg ? cg : "";
    ::free(cg);
    return out;
}

}  // namespace pieces::cgroup::systemd
