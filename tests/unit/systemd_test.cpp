// --systemd-cgroup's unit names and properties: what puncker asks systemd for.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/procfs.h"
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

const char* proc_devices =
    "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n254 gpiochip\n\nBlock devices:\n  8 sd\n259 blkext\n";

}  // namespace

TEST(SystemdUnit, NamesFollowSlicePrefixName) {
    unit_name u = unit_for("system.slice:docker:abc", "x");
    EXPECT_EQ(u.unit, "docker-abc.scope");
    EXPECT_EQ(u.slice, "system.slice");
    EXPECT_FALSE(u.is_slice());
    EXPECT_EQ(unit_for("", "myid").unit, "myid.scope");
    EXPECT_EQ(unit_for("", "myid").slice, "system.slice");
    EXPECT_EQ(unit_for("machine.slice:libpod:", "c1").unit, "libpod-c1.scope");
    u = unit_for("user.slice::user-child.slice", "x");
    EXPECT_EQ(u.unit, "user-child.slice");
    EXPECT_TRUE(u.is_slice());
    EXPECT_THROW(unit_for("/docker/abc", "x"), error);
    EXPECT_THROW(unit_for("docker:abc:def", "x"), error);
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

TEST(SystemdUnit, UnlimitedQuotaIsInfinity) {
    auto props = resource_properties(json{{"cpu", {{"quota", -1}}}}, true);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), UINT64_MAX);
}

TEST(SystemdUnit, AQuotaTooLargeToScaleIsUnlimited) {
    auto props = resource_properties(json{{"cpu", {{"quota", INT64_MAX}, {"period", 1000}}}}, false);
    EXPECT_EQ(get<uint64_t>(props, "CPUQuotaPerSecUSec"), UINT64_MAX);
}

TEST(SystemdUnit, HoldsReadsTheProcessOwnCgroup) {
    // This process's cgroup in the hierarchy systemd would track it in.
    std::string mine;
    for (const auto& c : procfs::cgroups())
        if ((c.hierarchy == 0 && c.controllers.empty()) || (mine.empty() && c.controllers == "name=systemd")) mine = c.path;
    ASSERT_FALSE(mine.empty());
    EXPECT_TRUE(holds(::getpid(), mine));
    EXPECT_FALSE(holds(::getpid(), mine + "/elsewhere.scope"));
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

TEST(SystemdUnit, DenyByDefaultDevicesBecomeAStrictAllowList) {
    // What Docker sends: deny everything, then its defaults and a --device.
    json devices = json::array({{{"allow", false}, {"access", "rwm"}},
                                {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}},
                                {{"allow", true}, {"type", "c"}, {"major", 136}, {"access", "rwm"}},
                                {{"allow", true}, {"type", "b"}, {"access", "m"}},
                                {{"allow", true}, {"type", "c"}, {"major", 240}, {"access", "r"}},
                                {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200}, {"access", "rw"}},
                                {{"allow", false}, {"type", "c"}, {"major", 10}, {"minor", 200}}});
    auto props = device_properties(cgroup::v1_settings(json{{"devices", devices}}), proc_devices);
    EXPECT_EQ(get<std::string>(props, "DevicePolicy"), "strict");
    pairs allow = get<pairs>(props, "DeviceAllow");
    auto has = [&](const std::string& dev, const std::string& access) {
        for (const auto& a : allow)
            if (a.first == dev && a.second == access) return true;
        return false;
    };
    EXPECT_TRUE(has("/dev/char/1:3", "rwm"));
    EXPECT_TRUE(has("char-pts", "rwm"));
    EXPECT_TRUE(has("block-*", "m"));
    EXPECT_TRUE(has("char-*", "m"));  // the runtime's own mknod rule, appended
    for (const auto& a : allow) {
        EXPECT_NE(a.first, "/dev/char/10:200") << "denied by the last rule";
        EXPECT_NE(a.second, "r") << "major 240 has no driver here, so nothing to allow: " << a.first;
    }
}

TEST(SystemdUnit, AllowByDefaultDevicesLeaveThePolicyAuto) {
    json devices = json::array({{{"allow", true}, {"access", "rwm"}}});
    auto props = device_properties(cgroup::v1_settings(json{{"devices", devices}}), proc_devices);
    EXPECT_EQ(get<std::string>(props, "DevicePolicy"), "auto");
    EXPECT_EQ(find(props, "DeviceAllow"), nullptr);
}
