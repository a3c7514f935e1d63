#include "core/cgroup/device_filter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"
#include "core/cgroup/resources.h"

using namespace pieces;
using cgroup::device_rule;
using json = nlohmann::json;

namespace {

device_rule rule(bool allow, const char* text) { return cgroup::parse_device_rule(allow, text); }
device_rule allow(const char* text) { return rule(true, text); }
device_rule deny(const char* text) { return rule(false, text); }

bool same_program(const std::vector<bpf_insn>& a, const std::vector<bpf_insn>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(bpf_insn)) == 0;
}

}  // namespace

TEST(DeviceFilter, ParsesTheDevicesCgroupTextForm) {
    device_rule r = allow("c 1:3 rwm");
    EXPECT_TRUE(r.allow);
    EXPECT_EQ(r.type, 'c');
    EXPECT_EQ(r.major, 1);
    EXPECT_EQ(r.minor, 3);
    EXPECT_EQ(r.access, uint32_t{BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE});
    r = deny("b *:* m");
    EXPECT_FALSE(r.allow);
    EXPECT_EQ(r.type, 'b');
    EXPECT_EQ(r.major, -1);
    EXPECT_EQ(r.minor, -1);
    EXPECT_EQ(r.access, uint32_t{BPF_DEVCG_ACC_MKNOD});
    EXPECT_EQ(allow("c 136:* rw").minor, -1);
    EXPECT_EQ(deny("a").type, 'a');
    for (const char* bad : {"", "x 1:3 r", "c 1:3", "c 1:3 rx", "c 1-3 r", "c :3 r", "c 1:3 ", "c 4294967296:1 r"})
        EXPECT_THROW(rule(true, bad), error) << bad;
}

TEST(DeviceFilter, RulesBeforeTheLastAllRuleDoNotCount) {
    // "a" resets the state: what came before it cannot matter, only the default it sets.
    auto reset = cgroup::device_filter_program({allow("c 1:3 rw"), deny("c 1:5 r"), deny("a"), allow("c 1:7 r")});
    EXPECT_TRUE(same_program(reset, cgroup::device_filter_program({deny("a"), allow("c 1:7 r")})));
    EXPECT_FALSE(same_program(reset, cgroup::device_filter_program({allow("a"), allow("c 1:7 r")})));
    EXPECT_FALSE(same_program(reset, cgroup::device_filter_program({deny("a"), allow("c 1:7 w")})));
    EXPECT_EQ(reset.back().code, BPF_JMP | BPF_EXIT);
}

TEST(DeviceFilter, V2SettingsCarryTheRulesThenTheRuntimeDefaults) {
    auto s = cgroup::v2_settings(json{{"devices", {{{"allow", false}, {"access", "rwm"}},
                                                   {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 200}, {"access", "rw"}}}}});
    auto defaults = cgroup::default_device_allows();
    ASSERT_EQ(s.size(), 2 + defaults.size());
    EXPECT_EQ(s[0].file + " " + s[0].value, "devices.deny a");
    EXPECT_EQ(s[1].file + " " + s[1].value, "devices.allow c 10:200 rw");
    EXPECT_EQ(s.back().value, defaults.back());
    // Each of them compiles.
    for (const auto& x : s) EXPECT_NO_THROW(cgroup::parse_device_rule(x.file == "devices.allow", x.value)) << x.value;
}

// The rest loads the programs into the kernel and has a process inside the cgroup open devices.

namespace {

// This host's cgroup2 hierarchy: BPF device programs attach to any cgroup2 cgroup, controllers or not.
std::string cgroup2_root() {
    for (const auto& m : procfs::mountinfo())
        if (m.fstype == "cgroup2") return m.mount_point;
    return {};
}

// A cgroup2 directory for one test, removed when the test ends, passed or failed.
class scratch_cgroup {
public:
    explicit scratch_cgroup(const std::string& root) {
        static int n = 0;
        path_ = root + "/pieces-devfilter-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
        if (::mkdir(path_.c_str(), 0755) != 0) throw_errno("mkdir", path_);
        fd_ = open_path(path_, O_RDONLY | O_DIRECTORY);
    }
    ~scratch_cgroup() {
        fd_.reset();
        ::rmdir(path_.c_str());
    }
    scratch_cgroup(const scratch_cgroup&) = delete;
    scratch_cgroup& operator=(const scratch_cgroup&) = delete;

    const std::string& path() const { return path_; }
    borrowed_fd fd() const { return fd_; }

    // Runs `action` in a child moved into this cgroup; returns what it returns (0 or an errno).
    int inside(const std::function<int()>& action) const {
        pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            int fd = ::open((path_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
            std::string me = std::to_string(::getpid());
            if (fd < 0 || ::write(fd, me.data(), me.size()) < 0) ::_exit(250);
            ::close(fd);
            ::_exit(action());
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    }

    int open(const char* dev, int flags) const {
        return inside([&] {
            int fd = ::open(dev, flags | O_CLOEXEC);
            if (fd < 0) return errno;
            ::close(fd);
            return 0;
        });
    }

    int mknod(char type, unsigned major, unsigned minor) const {
        char tmpl[] = "/tmp/pieces-devfilter-XXXXXX";
        std::string dir = ::mkdtemp(tmpl);
        int rc = inside([&] {
            mode_t kind = type == 'b' ? S_IFBLK : S_IFCHR;
            return ::mknod((dir + "/node").c_str(), kind | 0600, ::makedev(major, minor)) == 0 ? 0 : errno;
        });
        remove_all(dir);
        return rc;
    }

private:
    std::string path_;
    unique_fd fd_;
};

class DeviceFilterKernel : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = cgroup2_root();
        if (::geteuid() != 0 || root_.empty()) GTEST_SKIP() << "needs root and a cgroup2 hierarchy";
        cg_.emplace(root_);
    }
    void load(const std::vector<device_rule>& rules) { cgroup::attach_device_filter(cg_->fd(), cgroup::device_filter_program(rules)); }

    std::string root_;
    std::optional<scratch_cgroup> cg_;
};

}  // namespace

TEST_F(DeviceFilterKernel, WithoutAProgramEverythingOpens) {
    // The baseline the other tests depart from: the checks below do fail only because of the program.
    EXPECT_EQ(cg_->open("/dev/zero", O_RDWR), 0);
    EXPECT_EQ(cg_->mknod('c', 1, 3), 0);
    EXPECT_TRUE(cgroup::attached_device_programs(cg_->fd()).empty());
}

TEST_F(DeviceFilterKernel, DenyAllThenAllowOneDevice) {
    load({deny("a"), allow("c 1:3 rw")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), EPERM);
    EXPECT_EQ(cg_->mknod('c', 1, 3), EPERM);  // no "m"
}

TEST_F(DeviceFilterKernel, WildcardMajorAndMinor) {
    load({deny("a"), allow("c 1:* r")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_WRONLY), EPERM);
    load({deny("a"), allow("c *:5 rw")});
    EXPECT_EQ(cg_->open("/dev/zero", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), EPERM);
    load({deny("a"), allow("b *:* rwm")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), EPERM);  // a char device, not a block one
    EXPECT_EQ(cg_->mknod('b', 7, 0), 0);
}

TEST_F(DeviceFilterKernel, LastMatchingRuleWins) {
    load({deny("a"), allow("c 1:* rwm"), deny("c 1:5 rwm")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), EPERM);
    load({deny("a"), deny("c 1:5 rwm"), allow("c 1:* rwm")});
    EXPECT_EQ(cg_->open("/dev/zero", O_RDWR), 0);
    // An "a" rule wipes out the rules before it.
    load({deny("a"), allow("c 1:* rwm"), deny("a")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), EPERM);
}

TEST_F(DeviceFilterKernel, ReadOnlyRuleRefusesWriting) {
    load({deny("a"), allow("c 1:3 r")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/null", O_WRONLY), EPERM);
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), EPERM);
}

TEST_F(DeviceFilterKernel, MknodOnlyRule) {
    load({deny("a"), allow("c *:* m")});
    EXPECT_EQ(cg_->mknod('c', 1, 3), 0);
    EXPECT_EQ(cg_->mknod('b', 7, 0), EPERM);
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), EPERM);
}

TEST_F(DeviceFilterKernel, WithoutDenyAllTheRestIsAllowed) {
    // As in a new v1 cgroup: allow-all, minus what the rules deny, bit by bit.
    load({deny("c 1:5 w")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_WRONLY), EPERM);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDWR), EPERM);  // asks for a denied bit too
}

TEST_F(DeviceFilterKernel, AccessFromSeveralRulesAddsUp) {
    // v1 merges two rules for one device; read from one and write from another make read-write.
    load({deny("a"), allow("c 1:3 r"), allow("c 1:3 w")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), 0);
    load({deny("a"), allow("c 1:3 rw"), deny("c 1:3 w")});
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), EPERM);
}

TEST_F(DeviceFilterKernel, ApplyV2CompilesTheConfigsRulesAndTheRuntimeDefaults) {
    // What create does on a pure cgroup2 host, with the spec's default deny-all.
    cgroup::apply_v2(cg_->path(), cgroup::v2_settings(json{{"devices", {{{"allow", false}, {"access", "rwm"}}}}}));
    EXPECT_EQ(cg_->open("/dev/null", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDWR), 0);
    EXPECT_EQ(cg_->open("/dev/full", O_RDWR), 0);
    EXPECT_EQ(cg_->mknod('c', 4, 64), 0);                   // "c *:* m"
    EXPECT_EQ(cg_->open("/dev/kmsg", O_RDONLY), EPERM);    // 1:11 is not among them
    EXPECT_EQ(cg_->open("/dev/loop-control", O_RDWR), EPERM);
}

TEST_F(DeviceFilterKernel, AttachingAgainReplacesOurProgram) {
    load({deny("a"), allow("c 1:3 rw")});
    auto first = cgroup::attached_device_programs(cg_->fd());
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), EPERM);
    load({deny("a"), allow("c 1:5 rw")});
    auto second = cgroup::attached_device_programs(cg_->fd());
    ASSERT_EQ(second.size(), 1u);
    EXPECT_NE(second[0], first[0]);
    // Only the new rules are in force: the old program would still deny /dev/zero.
    EXPECT_EQ(cg_->open("/dev/zero", O_RDONLY), 0);
    EXPECT_EQ(cg_->open("/dev/null", O_RDONLY), EPERM);
}

TEST_F(DeviceFilterKernel, ErrorsNameWhatFailed) {
    unique_fd not_a_cgroup = open_path("/tmp", O_RDONLY | O_DIRECTORY);
    try {
        cgroup::attach_device_filter(not_a_cgroup, cgroup::device_filter_program({deny("a")}));
        ADD_FAILURE() << "attached to /tmp";
    } catch (const error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("cgroup v2 device filter: attach BPF program: ", 0), 0u) << e.what();
    }
}
