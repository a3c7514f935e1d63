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
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("", "myid"), "/system.slice/puncker-myid.scope");
    EXPECT_EQ(cgroup::systemd_to_cgroupfs("user.slice::child.slice", "x"), "/user.slice/child.slice");
    EXPECT_THROW(cgroup::systemd_to_cgroupfs("/docker/abc", "x"), error);
    EXPECT_THROW(cgroup::systemd_to_cgroupfs("notaslice:p:n", "x"), error);
}

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "core/base/fs.h"

TEST(ResourcesV2, ConversionsAsRuncMakesThem) {
    auto s = cgroup::v2_settings(json{
        {"memory", {{"limit", 100 << 20}, {"swap", 300 << 20}, {"reservation", 50 << 20}}},
        {"cpu", {{"shares", 1024}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}}},
        {"pids", {{"limit", -1}}},
        {"blockIO", {{"weight", 500}, {"throttleReadBpsDevice", {{{"major", 8}, {"minor", 0}, {"rate", 1000}}}}}},
        {"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 0}}}},
        {"unified", {{"memory.high", "90000000"}}}});
    EXPECT_EQ(lines(s), (std::vector<std::string>{
                            "memory.max=104857600", "memory.swap.max=209715200", "memory.low=52428800",
                            "cpu.weight=39", "cpu.max=50000 100000", "cpuset.cpus=0", "pids.max=max",
                            "io.weight=default 4950", "io.max=8:0 rbps=1000", "hugetlb.2MB.max=0",
                            "memory.high=90000000"}));
    EXPECT_EQ(s.back().controller, "memory");
}

TEST(ResourcesV2, RefusesWhatItCannotDo) {
    EXPECT_THROW(cgroup::v2_settings(json{{"devices", {{{"allow", true}, {"type", "x"}}}}}), error);
    EXPECT_THROW(cgroup::v2_settings(json{{"memory", {{"limit", 200}, {"swap", 100}}}}), error);
    EXPECT_THROW(cgroup::v2_settings(json{{"unified", {{"../../etc/passwd", "x"}}}}), error);
    EXPECT_TRUE(cgroup::v2_settings(json{{"devices", json::array()}}).empty());
}

TEST(ResourcesV2, AppliedToACgroup2DirectoryLayout) {
    // A stand-in for a cgroup2 directory: the interface files as plain files.
    char tmpl[] = "/tmp/pieces-cg2-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    for (const char* f : {"memory.max", "cpu.max", "pids.max"}) write_file(dir + "/" + f, "", O_CREAT);
    cgroup::apply_v2(dir, cgroup::v2_settings(json{{"memory", {{"limit", 4096}}},
                                                   {"cpu", {{"quota", 1000}, {"period", 10000}}},
                                                   {"pids", {{"limit", 7}}}}));
    EXPECT_EQ(read_file(dir + "/memory.max"), "4096");
    EXPECT_EQ(read_file(dir + "/cpu.max"), "1000 10000");
    EXPECT_EQ(read_file(dir + "/pids.max"), "7");
    // A file the kernel does not offer is an error naming it, not a silent skip.
    EXPECT_THROW(cgroup::apply_v2(dir, cgroup::v2_settings(json{{"blockIO", {{"weight", 100}}}})), error);
    std::filesystem::remove_all(dir);
}

TEST(ResourcesRdma, RdmaMaxLinesOnV1AndV2) {
    json r{{"rdma", {{"mlx5_0", {{"hcaHandles", 3}, {"hcaObjects", 100}}}, {"mlx4_1", {{"hcaObjects", 7}}}, {"idle", json::object()}}}};
    auto expected = std::vector<std::string>{"rdma.max=mlx4_1 hca_object=7", "rdma.max=mlx5_0 hca_handle=3 hca_object=100"};
    EXPECT_EQ(lines(cgroup::v1_settings(r)), expected);
    auto v2 = cgroup::v2_settings(r);
    EXPECT_EQ(lines(v2), expected);
    EXPECT_EQ(v2[0].controller, "rdma");
    EXPECT_TRUE(v2[0].required);  // a missing rdma controller is an error, not a skip
    EXPECT_THROW(cgroup::v1_settings(json{{"rdma", {{"mlx5_0", {{"hcaHandles", -1}}}}}}), error);
    EXPECT_THROW(cgroup::v1_settings(json{{"rdma", json::array()}}), error);
}

TEST(ResourcesMemory, CheckBeforeUpdateMarksTheLimit) {
    auto marked = [](const std::vector<cgroup::setting>& s) {
        std::vector<std::string> out;
        for (const auto& x : s)
            if (x.check_usage) out.push_back(x.file);
        return out;
    };
    json checked{{"memory", {{"limit", 1 << 20}, {"swap", 2 << 20}, {"checkBeforeUpdate", true}}}};
    EXPECT_EQ(marked(cgroup::v1_settings(checked)), std::vector<std::string>{"memory.limit_in_bytes"});
    EXPECT_EQ(marked(cgroup::v2_settings(checked)), std::vector<std::string>{"memory.max"});
    EXPECT_TRUE(marked(cgroup::v1_settings(json{{"memory", {{"limit", 1 << 20}}}})).empty());
    EXPECT_TRUE(marked(cgroup::v2_settings(json{{"memory", {{"limit", -1}, {"checkBeforeUpdate", true}}}})).empty());
    EXPECT_THROW(cgroup::v1_settings(json{{"memory", {{"checkBeforeUpdate", "yes"}}}}), error);
    EXPECT_EQ(cgroup::memory_usage_refusal(100, 150, 200), "unable to set memory limit to 100 (current usage: 150, peak usage: 200)");
    EXPECT_EQ(cgroup::memory_usage_refusal(150, 150, 150), "unable to set memory limit to 150 (current usage: 150, peak usage: 150)");
    EXPECT_EQ(cgroup::memory_usage_refusal(151, 150, 300), "");
}

namespace {

// A stand-in for a cgroup2 mount with one container directory "c" below it: plain files.
struct fake_cgroup2 {
    std::string mount;
    std::string dir;
    cgroup::group group;
    explicit fake_cgroup2(const std::string& controllers) {
        char tmpl[] = "/tmp/pieces-cg2-XXXXXX";
        mount = ::mkdtemp(tmpl);
        dir = mount + "/c";
        std::filesystem::create_directory(dir);
        write_file(mount + "/cgroup.controllers", controllers, O_CREAT);
        write_file(mount + "/cgroup.subtree_control", "", O_CREAT);
        cgroup::hierarchy h;
        h.mount_point = mount;
        h.root = "/";
        h.unified = true;
        group = cgroup::group({dir}, {h});
    }
    ~fake_cgroup2() { std::filesystem::remove_all(mount); }
};

}  // namespace

TEST(CgroupGroup, CheckBeforeUpdateRefusesALimitBelowUsageAndWritesNothing) {
    fake_cgroup2 cg("memory pids");
    write_file(cg.dir + "/memory.current", "5000\n", O_CREAT);
    write_file(cg.dir + "/memory.peak", "9000\n", O_CREAT);
    write_file(cg.dir + "/memory.max", "max", O_CREAT);
    write_file(cg.dir + "/pids.max", "0", O_CREAT);  // plain files: a write overwrites, never truncates
    auto request = [](int64_t limit) {
        return json{{"pids", {{"limit", 5}}}, {"memory", {{"limit", limit}, {"checkBeforeUpdate", true}}}};
    };
    try {
        cg.group.apply(cg.group.settings(request(4096)));
        FAIL() << "a limit below usage was accepted";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "unable to set memory limit to 4096 (current usage: 5000, peak usage: 9000)");
    }
    EXPECT_EQ(read_file(cg.dir + "/memory.max"), "max");
    EXPECT_EQ(read_file(cg.dir + "/pids.max"), "0");  // refused before any write
    cg.group.apply(cg.group.settings(request(8192)));
    EXPECT_EQ(read_file(cg.dir + "/memory.max"), "8192");
    EXPECT_EQ(read_file(cg.dir + "/pids.max"), "5");
}

TEST(CgroupGroup, RdmaNeedsTheController) {
    json r{{"rdma", {{"mlx5_0", {{"hcaHandles", 2}}}}}};
    fake_cgroup2 without("memory pids");
    try {
        without.group.settings(r);
        FAIL() << "rdma limits accepted without an rdma controller";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "linux.resources.rdma: this host has no rdma cgroup controller (see /proc/cgroups)");
    }
    fake_cgroup2 with("memory rdma");
    auto s = with.group.settings(r);
    write_file(with.dir + "/rdma.max", "", O_CREAT);
    with.group.apply(s);
    EXPECT_EQ(read_file(with.dir + "/rdma.max"), "mlx5_0 hca_handle=2");
    EXPECT_EQ(read_file(with.mount + "/cgroup.subtree_control"), "+rdma");
    // On a v1 layout the rdma hierarchy must be mounted.
    cgroup::hierarchy memory_only{"/sys/fs/cgroup/memory", "/", false, {"rw", "memory"}};
    EXPECT_THROW(cgroup::settings_for_layout(r, {memory_only}), error);
    cgroup::hierarchy rdma{"/sys/fs/cgroup/rdma", "/", false, {"rw", "rdma"}};
    EXPECT_EQ(lines(cgroup::settings_for_layout(r, {memory_only, rdma})), std::vector<std::string>{"rdma.max=mlx5_0 hca_handle=2"});
}

TEST(CgroupGroup, DestroyRemovesTheSubCgroupsAContainerMade) {
    // On the host's real cgroup2: rmdir of a cgroup with children fails, so each must go first.
    std::string mount;
    for (const auto& h : cgroup::mounted_hierarchies())
        if (h.unified) mount = h.mount_point;
    ASSERT_FALSE(mount.empty()) << "this test needs a mounted cgroup2 hierarchy";
    std::string dir = mount + "/pieces-unit-destroy-" + std::to_string(::getpid());
    for (const char* sub : {"/init.scope", "/system.slice/a.scope", "/system.slice/b.service/payload"})
        std::filesystem::create_directories(dir + sub);
    cgroup::group g({dir});
    g.destroy();
    EXPECT_FALSE(std::filesystem::exists(dir));
    g.destroy();  // already gone: nothing to do
}

TEST(ResourcesBfq, WeightsGoToBfqsFilesWhereTheKernelOffersThem) {
    const json weight = {{"blockIO", {{"weight", 500}}}};
    const json device = {{"blockIO", {{"weightDevice", {{{"major", 8}, {"minor", 0}, {"weight", 300}}}}}}};
    // Plain files stand in for the interface files: each is emptied before the write it checks.
    auto written = [](const std::string& path) {
        std::string s = read_file(path);
        write_file(path, "", O_TRUNC);
        return s;
    };
    // cgroup2: io.bfq.weight takes the blkio range unconverted, io.weight its own 1-10000.
    {
        fake_cgroup2 cg("io");
        write_file(cg.dir + "/io.weight", "", O_CREAT);
        cg.group.apply(cg.group.settings(weight));
        EXPECT_EQ(written(cg.dir + "/io.weight"), "default 4950");
        cg.group.apply(cg.group.settings(device));
        EXPECT_EQ(written(cg.dir + "/io.weight"), "8:0 2930");
        write_file(cg.dir + "/io.bfq.weight", "", O_CREAT);
        cg.group.apply(cg.group.settings(weight));
        EXPECT_EQ(written(cg.dir + "/io.bfq.weight"), "default 500");
        cg.group.apply(cg.group.settings(device));
        EXPECT_EQ(written(cg.dir + "/io.bfq.weight"), "8:0 300");
        EXPECT_EQ(read_file(cg.dir + "/io.weight"), "");
    }
    // v1: blkio.bfq.weight(_device) in place of blkio.weight(_device).
    char tmpl[] = "/tmp/pieces-blkio-XXXXXX";
    std::string mount = ::mkdtemp(tmpl);
    std::string dir = mount + "/c";
    std::filesystem::create_directory(dir);
    cgroup::hierarchy h;
    h.mount_point = mount;
    h.root = "/";
    h.controllers = {"blkio"};
    cgroup::group g({dir}, {h});
    for (const char* f : {"blkio.bfq.weight", "blkio.bfq.weight_device"}) write_file(dir + "/" + f, "", O_CREAT);
    g.apply(cgroup::v1_settings(weight));
    g.apply(cgroup::v1_settings(device));
    EXPECT_EQ(written(dir + "/blkio.bfq.weight"), "500");
    EXPECT_EQ(written(dir + "/blkio.bfq.weight_device"), "8:0 300");
    EXPECT_FALSE(std::filesystem::exists(dir + "/blkio.weight"));
    std::filesystem::remove(dir + "/blkio.bfq.weight");
    // Neither file: the generic one is written, and its absence is the kernel's error to report.
    EXPECT_THROW(g.apply(cgroup::v1_settings(weight)), error);
    write_file(dir + "/blkio.weight", "", O_CREAT);
    g.apply(cgroup::v1_settings(weight));
    EXPECT_EQ(written(dir + "/blkio.weight"), "500");
    std::filesystem::remove_all(mount);
}
