#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"
#include "core/base/signals.h"
#include "core/container/state_store.h"

using namespace pieces;

TEST(Signals, NumbersNamesAndPrefixes) {
    EXPECT_EQ(parse_signal("9"), SIGKILL);
    EXPECT_EQ(parse_signal("KILL"), SIGKILL);
    EXPECT_EQ(parse_signal("SIGTERM"), SIGTERM);
    EXPECT_EQ(parse_signal("term"), SIGTERM);
    EXPECT_EQ(parse_signal("SIGRTMIN+2"), SIGRTMIN + 2);
    EXPECT_THROW(parse_signal("SIGFOO"), error);
    EXPECT_THROW(parse_signal("0"), error);
    EXPECT_THROW(parse_signal("999"), error);
}

TEST(ContainerId, AcceptsAndRejects) {
    EXPECT_NO_THROW(container::validate_id("abc-1.2_3+x"));
    EXPECT_THROW(container::validate_id(""), error);
    EXPECT_THROW(container::validate_id(".."), error);
    EXPECT_THROW(container::validate_id("a/b"), error);
    EXPECT_THROW(container::validate_id("a b"), error);
}

// Every in-root test runs twice: with openat2, and with the walk used where it is unavailable.
class InRoot : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        use_openat2(GetParam());
        char tmpl[] = "/tmp/pieces-unit-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        outside_ = dir_ + "-outside";
        std::filesystem::create_directories(dir_ + "/root/etc");
        std::filesystem::create_directories(outside_);
        root_ = open_path(dir_ + "/root", O_PATH | O_DIRECTORY);
    }
    void TearDown() override {
        use_openat2(true);
        std::filesystem::remove_all(dir_);
        std::filesystem::remove_all(outside_);
    }
    std::string dir_, outside_;
    unique_fd root_;
};

TEST_P(InRoot, AbsoluteSymlinkStaysInside) {
    // A symlink to the host's "/tmp/...-outside" must resolve to root/tmp/...-outside instead.
    std::filesystem::create_directory_symlink(outside_, dir_ + "/root/escape");
    unique_fd fd = mkdir_all_in_root(root_, "/escape/made");
    EXPECT_FALSE(std::filesystem::exists(outside_ + "/made"));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/root" + outside_ + "/made"));
}

TEST_P(InRoot, DotDotIsClampedAtTheRoot) {
    std::filesystem::create_directory_symlink("../../../../..", dir_ + "/root/up");
    unique_fd fd = mkdir_all_in_root(root_, "/up/x/../y");
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/root/y"));
    unique_fd f = make_file_in_root(root_, "/../../etc/made-file");
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/root/etc/made-file"));
}

TEST_P(InRoot, OpenReportsMissing) {
    EXPECT_EQ(try_open_in_root(root_, "/nope", O_PATH), -ENOENT);
    EXPECT_GE(try_open_in_root(root_, "etc", O_PATH | O_DIRECTORY), 0);
}

TEST_P(InRoot, SymlinkChainsAndDotDotInsideLinks) {
    // a -> b/c, b/c -> ../../../../etc: both hops stay inside.
    std::filesystem::create_directories(dir_ + "/root/b");
    std::filesystem::create_directory_symlink("../../../../etc", dir_ + "/root/b/c");
    std::filesystem::create_directory_symlink("b/c", dir_ + "/root/a");
    unique_fd f = make_file_in_root(root_, "/a/through-links");
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/root/etc/through-links"));
    EXPECT_EQ(try_open_in_root(root_, "/a/through-links", O_RDONLY) >= 0, true);
}

INSTANTIATE_TEST_SUITE_P(Resolution, InRoot, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "openat2" : "walk"; });

TEST(Paths, ParentAndBase) {
    EXPECT_EQ(parent_of("/a/b/c"), "/a/b");
    EXPECT_EQ(parent_of("c"), "/");
    EXPECT_EQ(base_of("/a//b/"), "b");
}

TEST(Procfs, WritesOnlyUnderProc) {
    char tmpl[] = "/tmp/pieces-procfs-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    // A path that climbs out of procfs is refused by either kind of handle, and writes nothing.
    EXPECT_THROW(procfs::handle::open().write(std::string("..") + tmpl, "1"), error);
    EXPECT_THROW(procfs::handle::open_shared().write(std::string("..") + tmpl, "1"), error);
    EXPECT_EQ(read_file(tmpl), "");
    ::unlink(tmpl);
    // The real thing works: our own oom_score_adj, written back unchanged, through both kinds.
    std::string adj = read_file("/proc/self/oom_score_adj");
    EXPECT_NO_THROW(procfs::handle::open().write("self/oom_score_adj", adj));
    EXPECT_NO_THROW(procfs::handle::open_shared().write("self/oom_score_adj", adj));
    EXPECT_TRUE(procfs::handle::open().is_private()) << "tests run as root: fsopen(\"proc\") must work";
}

// In a child with mount and UTS namespaces of its own, /proc/sys/kernel/hostname is covered by
// a bind mount of another procfs file (domainname): a check that the file is on procfs alone
// would let a hostname write land on the domain name (CVE-2025-52881). Exit codes: 0 as
// expected, 10+ where it went wrong.
static int write_under_an_overmount(bool shared) {
    if (::unshare(CLONE_NEWNS | CLONE_NEWUTS) < 0) return 10;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return 11;
    if (::setdomainname("before", 6) < 0 || ::sethostname("before", 6) < 0) return 12;
    if (::mount("/proc/sys/kernel/domainname", "/proc/sys/kernel/hostname", nullptr, MS_BIND, nullptr) < 0) return 13;
    bool threw = false;
    try {
        (shared ? procfs::handle::open_shared() : procfs::handle::open()).write("sys/kernel/hostname", "after");
    } catch (const error&) {
        threw = true;
    }
    char host[64] = "", domain[64] = "";
    ::gethostname(host, sizeof host);
    ::getdomainname(domain, sizeof domain);
    if (std::string(domain) != "before") return 14;                   // redirected: the attack worked
    if (shared) return threw && std::string(host) == "before" ? 0 : 15;  // refused, nothing written
    return !threw && std::string(host) == "after" ? 0 : 16;             // written where it belongs
}

TEST(Procfs, AMountOverAProcFileCannotRedirectAWrite) {
    for (bool shared : {false, true}) {
        pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) ::_exit(write_under_an_overmount(shared));
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0) << (shared ? "the shared /proc" : "a private procfs");
    }
}
