// --systemd-cgroup's unit names and properties: what puncker asks systemd for.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/resources.h"
#include "core/cgroup/systemd.h"

using namespace pieces;
using namespace pieces::cgroup::systemd;
using json = nlohmann::json;
using pairs = std::vector<std::pair<std::string, std::string>>;

namespace {

const property* find(const std::vector<property>& props, const std::string& name) {
    for (const property& p : props)
        if (p.name == name) return &p;
    return nullptr;
}

template <typename T>
T get(const std::vector<property>& props, const std::string& name) {
    const property* p = find(props, name);
    if (!p) throw std::runtime_error("no property " + name);
    return std::get<T>(p->v);
}


}  // namespace

TEST(SystemdUnit, NamesFollowSlicePrefixName) {
    unit_name u = unit_for("system.slice:docker:abc", "x");
    EXPECT_EQ(u.unit, "docker-abc.scope");
    EXPECT_EQ(u.slice, "system.slice");
    EXPECT_FALSE(u.is_slice());
    // No cgroupsPath: the runtime's prefix keeps the unit clear of systemd's own ("init.scope").
    EXPECT_EQ(unit_for("", "init").unit, "puncker-init.scope");
    EXPECT_EQ(unit_for("", "myid").slice, "system.slice");
    EXPECT_EQ(unit_for("machine.slice:libpod:", "c1").unit, "libpod-c1.scope");
    u = unit_for("user.slice::user-child.slice", "x");
    EXPECT_EQ(u.unit, "user-child.slice");
    EXPECT_TRUE(u.is_slice());
    EXPECT_THROW(unit_for("/docker/abc", "x"), error);
    EXPECT_THROW(unit_for("docker:abc:def", "x"), error);
    // Ids the runtime takes that systemd does not: refused before anything starts.
    try {
        unit_for("system.slice:p:a+b", "x");
        FAIL() << "no error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "cgroupsPath \"system.slice:p:a+b\": \"p-a+b.scope\" is not a valid systemd unit name");
    }
    EXPECT_THROW(unit_for("", std::string(300, 'x')), error);
}

TEST(SystemdUnit, AScopeIsDelegatedAndHoldsTheInit) {
    auto props = unit_properties(unit_for("system.slice:puncker:c1", "c1"), 4242, "c1", json(), false);
    EXPECT_EQ(get<std::string>(props, "Slice"), "system.slice");
    EXPECT_EQ(get<std::vector<uint32_t>>(props, "PIDs"), std::vector<uint32_t>{4242});
    EXPECT_TRUE(get<bool>(props, "Delegate"));
    EXPECT_FALSE(get<bool>(props, "DefaultDependencies"));
    EXPECT_TRUE(get<bool>(props, "BlockIOAccounting"));
    EXPECT_EQ(find(props, "IOAccounting"), nullptr);
    EXPECT_NE(get<std::string>(props, "Description").find("c1"), std::string::npos);
    // A slice cannot hold processes or be delegated: the init joins it through cgroupfs.
    props = unit_properties(unit_for("::c1.slice", "c1"), 4242, "c1", json(), true);
    EXPECT_EQ(find(props, "PIDs"), nullptr);
    EXPECT_EQ(find(props, "Delegate"), nullptr);
    EXPECT_TRUE(get<bool>(props, "IOAccounting"));
}

TEST(SystemdUnit, V1HostsGetTheLegacyNames) {
    json r = {{"memory", {{"limit", 67108864}, {"swap", 134217728}}},
              {"cpu", {{"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}}},
              {"pids", {{"limit", 64}}},
              {"blockIO", {{"weight", 300}}}};
    auto props = resource_properties(r, false);
    EXPECT_EQ(get<uint64_t>(props, "MemoryLimit"), 67108864u);
    EXPECT_EQ(get<uint64_t>(props, "CPUShares"), 512u);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), 500000u);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPeriodUSec"), 100000u);
    EXPECT_EQ(get<uint64_t>(props, "TasksMax"), 64u);
    EXPECT_EQ(get<uint64_t>(props, "BlockIOWeight"), 300u);
    // systemd manages no v1 cpuset: the cgroup file carries it.
    EXPECT_EQ(find(props, "AllowedCPUs"), nullptr);
    EXPECT_EQ(find(props, "MemoryMax"), nullptr);
}

TEST(SystemdUnit, Cgroup2HostsGetTheUnifiedNamesAndConversions) {
    json r = {{"memory", {{"limit", 67108864}, {"swap", 134217728}, {"reservation", 33554432}}},
              {"cpu", {{"shares", 1024}, {"quota", 12345}, {"cpus", "0-2,5"}, {"mems", "0"}}},
              {"pids", {{"limit", -1}}},
              {"blockIO", {{"weight", 500}}}};
    auto props = resource_properties(r, true);
    EXPECT_EQ(get<uint64_t>(props, "MemoryMax"), 67108864u);
    EXPECT_EQ(get<uint64_t>(props, "MemorySwapMax"), 67108864u);  // swap is memory plus swap
    EXPECT_EQ(get<uint64_t>(props, "MemoryLow"), 33554432u);
    EXPECT_EQ(get<uint64_t>(props, "CPUWeight"), 39u);  // the same conversion as cpu.weight
    // 12345 us per 100 ms is 123450 us per second, rounded up to systemd's 10 ms steps.
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), 130000u);
    EXPECT_EQ(find(props, "CPUQuotaPeriodUSec"), nullptr);
    EXPECT_EQ(get<std::vector<uint8_t>>(props, "AllowedCPUs"), std::vector<uint8_t>{0x27});
    EXPECT_EQ(get<std::vector<uint8_t>>(props, "AllowedMemoryNodes"), std::vector<uint8_t>{0x01});
    EXPECT_EQ(get<uint64_t>(props, "TasksMax"), UINT64_MAX);  // unlimited
    EXPECT_EQ(get<uint64_t>(props, "IOWeight"), 4950u);
    EXPECT_EQ(find(props, "MemoryLimit"), nullptr);
    EXPECT_EQ(find(props, "CPUShares"), nullptr);
}

TEST(SystemdUnit, UnifiedFilesSystemdWritesTooBecomeProperties) {
    json r = {{"unified", {{"memory.high", "50000000"}, {"memory.min", "1000"}, {"pids.max", "max"},
                           {"cpu.max", "25000 50000"}, {"cpuset.cpus", "1"}, {"io.latency", "8:0 target=10"}}}};
    auto props = resource_properties(r, true);
    EXPECT_EQ(get<uint64_t>(props, "MemoryHigh"), 50000000u);
    EXPECT_EQ(get<uint64_t>(props, "MemoryMin"), 1000u);
    EXPECT_EQ(get<uint64_t>(props, "TasksMax"), UINT64_MAX);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPeriodUSec"), 50000u);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), 500000u);
    EXPECT_EQ(get<std::vector<uint8_t>>(props, "AllowedCPUs"), std::vector<uint8_t>{0x02});
    EXPECT_EQ(props.size(), 6u) << "io.latency has no property: the file alone carries it";
    // On a host with v1 controllers systemd manages none of these files.
    EXPECT_TRUE(resource_properties(r, false).empty());
    try {
        resource_properties(json{{"unified", {{"memory.high", "lots"}}}}, true);
        FAIL() << "no error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "linux.resources.unified.memory.high: not a number or \"max\": \"lots\"");
    }
}

TEST(SystemdUnit, UnlimitedQuotaIsInfinity) {
    auto props = resource_properties(json{{"cpu", {{"quota", -1}}}}, true);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), UINT64_MAX);
}

TEST(SystemdUnit, AQuotaTooLargeToScaleIsUnlimited) {
    auto props = resource_properties(json{{"cpu", {{"quota", INT64_MAX}, {"period", 1000}}}}, false);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), UINT64_MAX);
}

TEST(SystemdUnit, TrackedCgroupIsInTheHierarchySystemdUsesHere) {
    // /proc/PID/cgroup lists hierarchies whether mounted here or not: the layout decides.
    std::string text = read_file("/proc/self/cgroup");
    auto line_of = [&](const std::string& marker) {
        size_t at = text.find(marker);
        if (at == std::string::npos) return std::string("(none)");
        size_t start = at + marker.size();
        return text.substr(start, text.find('\n', start) - start);
    };
    cgroup::hierarchy named{"/sys/fs/cgroup/systemd", "/", false, {"rw", "name=systemd"}};
    cgroup::hierarchy v2{"/sys/fs/cgroup/unified", "/", true, {}};
    if (text.find(":name=systemd:") != std::string::npos) {
        EXPECT_EQ(tracked_cgroup(::getpid(), {named, v2}), line_of(":name=systemd:"));
    }
    EXPECT_EQ(tracked_cgroup(::getpid(), {v2}), text.rfind("0::", 0) == 0 ? line_of("0::") : line_of("\n0::"));
}

TEST(SystemdUnit, CpuMaskParsesListsAndRanges) {
    EXPECT_EQ(cpu_mask("0", "w"), std::vector<uint8_t>{0x01});
    EXPECT_EQ(cpu_mask("1,3", "w"), std::vector<uint8_t>{0x0a});
    EXPECT_EQ(cpu_mask("8-9", "w"), (std::vector<uint8_t>{0x00, 0x03}));
    EXPECT_THROW(cpu_mask("a-b", "w"), error);
    EXPECT_THROW(cpu_mask("3-1", "w"), error);
    try {
        cpu_mask("0,x", "linux.resources.cpu.cpus");
        FAIL() << "no error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "linux.resources.cpu.cpus: not a list of numbers and ranges: \"0,x\"");
    }
}

namespace {

// The device properties of a rule list, with the runtime's own rules appended as they are for
// every container.
std::vector<property> devices_of(const json& devices) {
    return device_properties(cgroup::v1_settings(json{{"devices", devices}}));
}

json rule(bool allow, const char* type, int64_t major, int64_t minor, const char* access) {
    json r = {{"allow", allow}, {"type", type}, {"access", access}};
    if (major >= 0) r["major"] = major;
    if (minor >= 0) r["minor"] = minor;
    return r;
}

const json deny_all = {{"allow", false}, {"access", "rwm"}};

}  // namespace

TEST(SystemdUnit, DenyByDefaultDevicesBecomeAStrictAllowList) {
    // What Docker sends: deny everything, then its defaults and a --device.
    auto props = devices_of(json::array({deny_all, rule(true, "c", 1, 3, "rwm"), rule(true, "c", 136, -1, "rwm"),
                                         rule(true, "b", -1, -1, "m"), rule(true, "c", 10, 200, "rw"),
                                         rule(false, "c", 10, 200, "rwm")}));
    // DeviceAllow before DevicePolicy: the other order leaves the unit wanting a daemon-reload.
    ASSERT_EQ(props.size(), 2u);
    EXPECT_EQ(props[0].name, "DeviceAllow");
    EXPECT_EQ(props[1], (property{"DevicePolicy", std::string("strict")}));
    pairs expected = {{"/dev/char/1:3", "rwm"},  {"char-136", "rwm"},      {"block-*", "m"},
                      // the runtime's own rules, appended (1:3 and 136:* again, merged)
                      {"char-*", "m"},          {"/dev/char/1:5", "rwm"}, {"/dev/char/1:7", "rwm"},
                      {"/dev/char/1:8", "rwm"}, {"/dev/char/1:9", "rwm"}, {"/dev/char/5:0", "rwm"},
                      {"/dev/char/5:1", "rwm"}, {"/dev/char/5:2", "rwm"}};
    EXPECT_EQ(get<pairs>(props, "DeviceAllow"), expected);  // 10:200 denied again by its last rule
}

TEST(SystemdUnit, DeviceAccessIsPlayedThroughBitByBit) {
    // rwm granted, w taken away: rm stays.
    auto props = devices_of(json::array({deny_all, rule(true, "c", 10, 229, "rwm"), rule(false, "c", 10, 229, "w")}));
    EXPECT_EQ(get<pairs>(props, "DeviceAllow")[0], (std::pair<std::string, std::string>{"/dev/char/10:229", "rm"}));
    // Granted in two rules: the bits add up.
    props = devices_of(json::array({deny_all, rule(true, "c", 10, 229, "r"), rule(true, "c", 10, 229, "w")}));
    EXPECT_EQ(get<pairs>(props, "DeviceAllow")[0], (std::pair<std::string, std::string>{"/dev/char/10:229", "rw"}));
}

TEST(SystemdUnit, ADenyInsideAWiderGrantClosesTheGrant) {
    // systemd cannot say "major 4 but not 4:3": the whole major loses what 4:3 was denied.
    auto props = devices_of(json::array({deny_all, rule(true, "c", 4, -1, "rwm"), rule(false, "c", 4, 3, "w")}));
    EXPECT_EQ(get<pairs>(props, "DeviceAllow")[0], (std::pair<std::string, std::string>{"char-4", "rm"}));
}

TEST(SystemdUnit, StarColonMinorRulesHaveNoSystemdForm) {
    auto props = devices_of(json::array({deny_all, rule(true, "c", -1, 5, "rw")}));
    for (const auto& [dev, access] : get<pairs>(props, "DeviceAllow"))
        EXPECT_FALSE(dev == "char-*" && access != "m") << "'c *:5' must not become every char device: " << access;
}

TEST(SystemdUnit, AllowByDefaultDevicesLeaveThePolicyAuto) {
    auto props = devices_of(json::array({{{"allow", true}, {"access", "rwm"}}}));
    EXPECT_EQ(get<std::string>(props, "DevicePolicy"), "auto");
    // An empty list resets what an earlier update may have added (SetUnitProperties appends).
    EXPECT_EQ(get<pairs>(props, "DeviceAllow"), pairs{});
    // Exceptions to allow-all cannot be told to systemd: it gets a closed policy, the cgroup
    // holds the real rules.
    props = devices_of(json::array({{{"allow", true}, {"access", "rwm"}}, rule(false, "c", 1, 1, "rwm")}));
    EXPECT_EQ(get<std::string>(props, "DevicePolicy"), "strict");
    EXPECT_EQ(get<pairs>(props, "DeviceAllow"), pairs{});
}
