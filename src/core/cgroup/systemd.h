// --systemd-cgroup where systemd runs: the container's cgroup is a transient unit that systemd
// starts, changes and stops at our request over D-Bus, so that systemd knows the cgroup is taken
// and leaves it alone. Where systemd does not run, the same cgroupsPath names a cgroupfs path
// (systemd_to_cgroupfs) and nothing here is used.
//
// sd-bus comes from libsystemd.so.0, loaded on first use: a runtime that never sees
// --systemd-cgroup does not load it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cgroup/resources.h"

typedef struct sd_bus sd_bus;

namespace pieces::cgroup {
struct hierarchy;
class group;
}

namespace pieces::cgroup::systemd {

/// True when systemd is this machine's init: /run/systemd/system is a directory.
bool booted();

/// The cgroup `pid` sits in, in the hierarchy systemd tracks units in (the v1 name=systemd one
/// where `layout` has it mounted, else cgroup2), as /proc/PID/cgroup shows it from here.
std::string tracked_cgroup(pid_t pid, const std::vector<hierarchy>& layout);

/// The group's directory in that same hierarchy, "" when it has none.
std::string tracked_dir(const group& cg);

/// The unit a cgroupsPath "slice:prefix:name" stands for: "prefix-name.scope" in `slice`, or a
/// slice of its own when the name is one ("x.slice", placed in the slice it names by its dashes).
/// No cgroupsPath is "system.slice:puncker:<id>". Throws when the name is no valid unit name.
struct unit_name {
    std::string unit;
    std::string slice;  ///< the parent slice ("system.slice" when the path leaves it empty)
    bool is_slice() const;
};
unit_name unit_for(const std::string& cgroups_path, const std::string& id);

/// One unit property as D-Bus carries it: b, t, s, au, ay or a(ss).
using value = std::variant<bool, uint64_t, std::string, std::vector<uint32_t>, std::vector<uint8_t>,
                           std::vector<std::pair<std::string, std::string>>>;
struct property {
    std::string name;
    value v;
    bool operator==(const property&) const = default;
};

/// linux.resources as unit properties, in the names systemd has for the controllers it manages:
/// on a host with v1 controllers (v1 or hybrid) MemoryLimit, CPUShares, BlockIOWeight...; on a
/// pure cgroup2 host MemoryMax, CPUWeight, IOWeight, AllowedCPUs... (with the conversions the
/// cgroupfs path makes). Devices become DevicePolicy and DeviceAllow. What systemd has no
/// property for is still written to the cgroup files afterwards.
std::vector<property> resource_properties(const nlohmann::json& resources, bool unified);

/// Everything a new unit for a container is started with: its description, its slice, the
/// init's pid and delegation (scopes), no default dependencies, accounting for the controllers
/// limits need, and resource_properties.
std::vector<property> unit_properties(const unit_name& name, pid_t init, const std::string& id,
                                      const nlohmann::json& resources, bool unified);

/// The device rules (devices.allow/deny settings, in order) as DeviceAllow and DevicePolicy,
/// access bit by access bit: a list that ends up denying by default becomes "strict" plus what
/// it grants ("/dev/char/M:m", "char-M" for a whole major, "char-*"); a deny inside a wider
/// grant takes its bits from the whole grant. Allow-all becomes "auto" with an empty list;
/// allow-all with exceptions, which systemd cannot express, "strict" with an empty list. The
/// cgroup's own rules, written after systemd's, hold either way; systemd's come back when it
/// applies the unit again (a daemon-reload), so they must never grant more.
std::vector<property> device_properties(const std::vector<setting>& rules);

/// "0-2,4" as the bitmask AllowedCPUs/AllowedMemoryNodes take (bit n of byte n/8).
std::vector<uint8_t> cpu_mask(const std::string& list, const std::string& where);

/// A connection to systemd's manager: the system bus, or systemd's private socket when no bus
/// daemon answers.
class manager {
public:
    /// This process's connection, made on first use (a `run` creates and deletes over one) and
    /// made again when the bus closed it since (a restart of the bus daemon while a `run`
    /// waited for its container); throws one line naming what failed.
    static manager& connection();
    manager(manager&& other) noexcept
        : bus_(std::exchange(other.bus_, nullptr)), version_(other.version_) {}
    manager& operator=(manager&&) = delete;
    ~manager();

    /// Starts a transient unit with `props` and waits for its start job to finish. A failed
    /// unit of the same name still loaded is reset first.
    void start_transient(const std::string& unit, const std::vector<property>& props);
    /// Changes properties of a running unit (for this boot only).
    void set_properties(const std::string& unit, const std::vector<property>& props);
    /// Forgets that the unit failed, so that its name can be used again.
    void reset_failed(const std::string& unit);
    /// Stops the unit and waits for the stop job; a unit systemd no longer has is fine.
    void stop(const std::string& unit);
    /// The unit's ControlGroup ("/system.slice/x.scope"), "" when it has none.
    std::string control_group(const std::string& unit);

private:
    explicit manager(sd_bus* bus) : bus_(bus) {}
    static manager connect();
    /// Whether the connection is still open, after reading what the bus has sent meanwhile
    /// (which is how sd-bus learns that the other end closed it).
    bool open();
    /// `props` without those this systemd is too old for (its version is asked once, and only
    /// when such a property is there).
    std::vector<property> supported(const std::vector<property>& props);
    sd_bus* bus_ = nullptr;
    int version_ = -1;  ///< systemd's, once asked
};

}  // namespace pieces::cgroup::systemd
