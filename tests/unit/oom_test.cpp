#include "core/cgroup/oom.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "core/base/error.h"
#include "core/base/fs.h"

using namespace pieces;

TEST(OomCount, LargerOfOomAndOomKill) {
    EXPECT_EQ(cgroup::oom_count("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"), 3u);
    EXPECT_EQ(cgroup::oom_count("oom 1\noom_kill 4\n"), 4u);
    EXPECT_EQ(cgroup::oom_count(""), 0u);
}

namespace {

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

TEST(OomWatch, CgroupTwoCountsNewOomsAndSeesTheCgroupEmptied) {
    // memory.events and cgroup.events as plain files: inotify sees their changes the same way.
    char tmpl[] = "/tmp/pieces-oom-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    write_file(dir + "/memory.events", "oom 2\noom_kill 2\n", O_CREAT);
    write_file(dir + "/cgroup.events", "populated 1\nfrozen 0\n", O_CREAT);
    auto w = cgroup::oom_watch::open_v2(dir);
    EXPECT_FALSE(readable(w.fd(), 0));  // OOMs from before the watch are not news
    write_file(dir + "/memory.events", "oom 3\noom_kill 3\n");
    ASSERT_TRUE(readable(w.fd(), 1000));
    EXPECT_EQ(w.take(), 1u);
    EXPECT_FALSE(w.gone());
    EXPECT_FALSE(readable(w.fd(), 0));
    write_file(dir + "/memory.events", "oom 3\noom_kill 5\n");
    write_file(dir + "/cgroup.events", "populated 0\nfrozen 0\n");
    ASSERT_TRUE(readable(w.fd(), 1000));
    EXPECT_EQ(w.take(), 2u);
    EXPECT_TRUE(w.gone());
    std::filesystem::remove_all(dir);
}

TEST(OomWatch, NoMemoryControllerIsAnError) {
    char tmpl[] = "/tmp/pieces-oom-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    cgroup::hierarchy h{dir, "/", true, {}};
    std::filesystem::create_directory(dir + "/c");
    EXPECT_THROW(cgroup::oom_watch::open(cgroup::group({dir + "/c"}, {h})), error);
    std::filesystem::remove_all(dir);
}
