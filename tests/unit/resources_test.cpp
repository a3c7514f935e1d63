#include "core/cgroup/resources.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

using namespace pieces;
using json = nlohmann::json;

namespace {
std::vector<std::string> lines(const std::vector<cgroup::setting>& s) {
    std::vector<std::string> out;
    for (const auto& x : s) out.push_back(x.file + "=" + x.value);
    return out;
}
}  // namespace

TEST(ResourcesV1, MemoryLimitBeforeSwapAndCpuPeriodBeforeQuota) {
    auto s = cgroup::v1_settings(json{{"memory", {{"swap", 200}, {"limit", 100}}},
                                      {"cpu", {{"quota", 5000}, {"period", 10000}, {"cpus", "0-1"}}}});
    EXPECT_EQ(lines(s), (std::vector<std::string>{"memory.limit_in_bytes=100", "memory.memsw.limit_in_bytes=200",
                                                   "cpu.cfs_period_us=10000", "cpu.cfs_quota_us=5000",
                                                   "cpuset.cpus=0-1"}));
    EXPECT_EQ(s[4].controller, "cpuset");
}

TEST(ResourcesV1, ZeroMeansNotSet) {
    auto s = cgroup::v1_settings(json{{"blockIO", {{"weight", 0}}}, {"cpu", {{"shares", 0}}}, {"pids", {{"limit", 0}}}});
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(lines(cgroup::v1_settings(json{{"pids", {{"limit", -1}}}})), std::vector<std::string>{"pids.max=max"});
}

TEST(ResourcesV1, DeviceRulesInOrderThenTheRuntimesOwn) {
    auto s = cgroup::v1_settings(json{{"devices", {{{"allow", false}, {"access", "rwm"}},
                                                  {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200}, {"access", "rw"}},
                                                  {{"allow", true}, {"type", "b"}, {"major", 8}, {"access", "r"}}}}});
    ASSERT_EQ(s.size(), 3 + cgroup::default_device_allows().size());
    EXPECT_EQ(s[0].file + " " + s[0].value, "devices.deny a");
    EXPECT_EQ(s[1].file + " " + s[1].value, "devices.allow c 10:200 rw");
    EXPECT_EQ(s[2].value, "b 8:* r");
    EXPECT_EQ(s[3].value, cgroup::default_device_allows()[0]);
}

TEST(ResourcesV1, BlockIoDevicesHugepagesAndNetwork) {
    auto s = cgroup::v1_settings(json{
        {"blockIO", {{"weightDevice", {{{"major", 8}, {"minor", 0}, {"weight", 300}}}},
                     {"throttleReadBpsDevice", {{{"major", 8}, {"minor", 0}, {"rate", 1048576}}}}}},
        {"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 4194304}}}},
        {"network", {{"classID", 1048577}, {"priorities", {{{"name", "eth0"}, {"priority", 5}}}}}}});
    EXPECT_EQ(lines(s), (std::vector<std::string>{"blkio.weight_device=8:0 300", "blkio.throttle.read_bps_device=8:0 1048576",
                                                   "hugetlb.2MB.limit_in_bytes=4194304", "net_cls.classid=1048577",
                                                   "net_prio.ifpriomap=eth0 5"}));
}

TEST(ResourcesV1, ErrorsNameTheField) {
    auto message = [](const json& r) {
        try {
            cgroup::v1_settings(r);
        } catch (const error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_EQ(message(json{{"memory", {{"swappiness", 101}}}}), "linux.resources.memory.swappiness: must be between 0 and 100");
    EXPECT_EQ(message(json{{"devices", {{{"allow", true}, {"type", "x"}}}}}), "linux.resources.devices[0].type: unknown device type \"x\"");
    EXPECT_EQ(message(json{{"cpu", {{"shares", "many"}}}}), "linux.resources.cpu.shares: expected an integer");
}

#include "core/cgroup/cgroup.h"

TEST(SystemdCgroupPath, SlicePrefixNameBecomesAScope) {
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("system.slice:docker:abc", "x"), "/system.slice/docker-abc.scope");
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("kubepods-besteffort.slice:cri-containerd:f00", "x"),
              "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-f00.scope");
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("-.slice:p:n", "x"), "/p-n.scope");
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("", "myid"), "/system.slice/myid.scope");
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("user.slice::child.slice", "x"), "/user.slice/child.slice");
    EXPECT_THROW(cgroup::systemd_to_cgroupfs("/docker/abc", "x"), error);
    EXPECT_THROW(cgroup::systemd_to_cgroupfs("notaslice:p:n", "x"), error);
}
