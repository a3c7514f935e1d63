#include "core/linux/lsm.h"
#include "core/linux/mount_options.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

using pieces::linux_::parse_mount_options;

TEST(MountOptions, FlagsAndData) {
    auto o = parse_mount_options({"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
    EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_NODEV));
    EXPECT_EQ(o.data, "mode=1777,size=65536k");
    EXPECT_FALSE(o.bind);
}

TEST(MountOptions, LaterOptionWins) {
    auto o = parse_mount_options({"ro", "rw"});
    EXPECT_EQ(o.flags & MS_RDONLY, 0u);
    EXPECT_EQ(o.clear & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
    o = parse_mount_options({"rw", "ro"});
    EXPECT_EQ(o.flags & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
    EXPECT_EQ(o.clear & MS_RDONLY, 0u);
}

TEST(MountOptions, BindAndRecursiveBind) {
    auto b = parse_mount_options({"bind"});
    EXPECT_TRUE(b.bind);
    EXPECT_EQ(b.flags & MS_REC, 0u);
    auto r = parse_mount_options({"rbind", "ro"});
    EXPECT_TRUE(r.bind);
    EXPECT_EQ(r.flags & (MS_BIND | MS_REC | MS_RDONLY), static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
}

TEST(MountOptions, PropagationIsKeptApart) {
    auto o = parse_mount_options({"rprivate", "shared"});
    ASSERT_EQ(o.propagation.size(), 2u);
    EXPECT_EQ(o.propagation[0], static_cast<unsigned long>(MS_PRIVATE | MS_REC));
    EXPECT_EQ(o.propagation[1], static_cast<unsigned long>(MS_SHARED));
    EXPECT_EQ(o.flags, 0u);
}

TEST(MountOptions, AtimeFamilyAndRecursiveReadOnly) {
    auto o = parse_mount_options({"noatime", "nodiratime", "rro"});
    EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOATIME | MS_NODIRATIME));
    EXPECT_TRUE(o.recursive_readonly);
    EXPECT_EQ(parse_mount_options({"strictatime"}).flags, static_cast<unsigned long>(MS_STRICTATIME));
    EXPECT_EQ(parse_mount_options({"defaults"}).data, "");
}

TEST(MountLabel, AddedToFilesystemsThatTakeIt) {
    using pieces::linux_::with_mount_label;
    EXPECT_EQ(with_mount_label("size=64k", "tmpfs", "system_u:object_r:container_file_t:s0"),
              "size=64k,context=\"system_u:object_r:container_file_t:s0\"");
    EXPECT_EQ(with_mount_label("", "mqueue", "l"), "context=\"l\"");
    EXPECT_EQ(with_mount_label("", "tmpfs", ""), "");
    for (const char* keeps : {"bind", "proc", "sysfs", "cgroup", "cgroup2"}) EXPECT_EQ(with_mount_label("x", keeps, "l"), "x");
}
