#include "core/linux/seccomp_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/error.h"
#include "core/base/fs.h"

using namespace pieces;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

json profile(const std::string& denied) {
    return {{"defaultAction", "SCMP_ACT_ALLOW"},
            {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}},
            {"syscalls", {{{"names", {denied}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
}

bool same(const linux_::seccomp_program& a, const linux_::seccomp_program& b) {
    return a.flags == b.flags && a.notify == b.notify && a.bpf.size() == b.bpf.size() &&
           std::memcmp(a.bpf.data(), b.bpf.data(), a.bpf.size() * sizeof(sock_filter)) == 0;
}

class SeccompCache : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/seccomp-cache-test.XXXXXX";
        root = ::mkdtemp(tmpl);
        dir = linux_::seccomp_cache_dir(root);
    }
    void TearDown() override { fs::remove_all(root); }

    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        if (fs::exists(dir))
            for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
        std::sort(names.begin(), names.end());
        return names;
    }
    std::string only_entry() const {
        auto names = entries();
        EXPECT_EQ(names.size(), 1u);
        return names.empty() ? "" : dir + "/" + names[0];
    }
    // Changes the last instruction's constant, keeping the entry well-formed.
    void tamper(const std::string& path) const {
        std::string bytes = read_file(path);
        bytes[bytes.size() - 1] ^= 0x55;
        write_file(path, bytes, O_TRUNC);
    }

    std::string root, dir;
};

}  // namespace

TEST_F(SeccompCache, OurBinaryHasABuildId) {
    // Without one nothing would be cached: the tests below rely on it, as the speed-up does.
    EXPECT_EQ(linux_::self_build_id().size(), 40u) << linux_::self_build_id();
}

TEST_F(SeccompCache, KeepsOneEntryPerProfileAndGivesWhatTheCompilerGives) {
    auto fresh = linux_::compile_seccomp(profile("mkdirat"));
    auto first = linux_::compile_seccomp_cached(profile("mkdirat"), dir);
    EXPECT_TRUE(same(first, fresh));
    std::string entry = only_entry();
    struct stat st {};
    ASSERT_EQ(::stat(entry.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);

    EXPECT_TRUE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), fresh));
    EXPECT_EQ(entries().size(), 1u);
    auto other = linux_::compile_seccomp_cached(profile("symlinkat"), dir);
    EXPECT_TRUE(same(other, linux_::compile_seccomp(profile("symlinkat"))));
    EXPECT_FALSE(same(other, fresh));
    EXPECT_EQ(entries().size(), 2u);
}

TEST_F(SeccompCache, AHitIsLoadedFromTheEntryWithoutCompiling) {
    linux_::compile_seccomp_cached(profile("mkdirat"), dir);
    tamper(only_entry());
    // What the entry holds comes back, not a fresh compile: the cache is what is used.
    EXPECT_FALSE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), linux_::compile_seccomp(profile("mkdirat"))));
}

TEST_F(SeccompCache, EntriesOthersCouldHaveWrittenAreIgnoredAndReplaced) {
    auto fresh = linux_::compile_seccomp(profile("mkdirat"));
    linux_::compile_seccomp_cached(profile("mkdirat"), dir);
    std::string entry = only_entry();
    tamper(entry);
    ASSERT_EQ(::chmod(entry.c_str(), 0620), 0);
    EXPECT_TRUE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), fresh));
    struct stat st {};
    ASSERT_EQ(::stat(entry.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);  // replaced by a whole entry of ours
    EXPECT_TRUE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), fresh));
}

TEST_F(SeccompCache, ADirectoryOthersCanWriteIsNotUsed) {
    fs::create_directories(dir);
    ASSERT_EQ(::chmod(dir.c_str(), 0770), 0);
    auto prog = linux_::compile_seccomp_cached(profile("mkdirat"), dir);
    EXPECT_TRUE(same(prog, linux_::compile_seccomp(profile("mkdirat"))));
    EXPECT_TRUE(entries().empty());
}

TEST_F(SeccompCache, TruncatedOrForeignEntriesAreRecompiled) {
    auto fresh = linux_::compile_seccomp(profile("mkdirat"));
    linux_::compile_seccomp_cached(profile("mkdirat"), dir);
    std::string entry = only_entry();
    std::string whole = read_file(entry);
    write_file(entry, whole.substr(0, whole.size() - 3), O_TRUNC);
    EXPECT_TRUE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), fresh));
    EXPECT_EQ(read_file(entry), whole);

    // Another profile's entry under this profile's name: its key differs, so it is not taken.
    linux_::compile_seccomp_cached(profile("symlinkat"), dir);
    for (const auto& name : entries())
        if (dir + "/" + name != entry) fs::copy_file(dir + "/" + name, entry, fs::copy_options::overwrite_existing);
    EXPECT_TRUE(same(linux_::compile_seccomp_cached(profile("mkdirat"), dir), fresh));
}

TEST_F(SeccompCache, KeepsTheMostRecentlyUsedEntries) {
    auto name_of = [&](const std::string& denied) {
        auto before = entries();
        linux_::compile_seccomp_cached(profile(denied), dir, 2);
        auto after = entries();
        std::vector<std::string> added;
        std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
        return added.empty() ? std::string() : added[0];
    };
    std::string a = name_of("mkdirat");
    std::string b = name_of("symlinkat");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    ::usleep(10000);
    linux_::compile_seccomp_cached(profile("mkdirat"), dir, 2);  // a hit: a is now the newer
    ::usleep(10000);
    std::string c = name_of("linkat");
    auto left = entries();
    EXPECT_EQ(left.size(), 2u);
    EXPECT_NE(std::find(left.begin(), left.end(), a), left.end());
    EXPECT_NE(std::find(left.begin(), left.end(), c), left.end());
    EXPECT_EQ(std::find(left.begin(), left.end(), b), left.end());
}

TEST_F(SeccompCache, ANotifyProfileTakesItsListenerFromTheProfileOnAHit) {
    json p = {{"defaultAction", "SCMP_ACT_ALLOW"},
              {"listenerPath", "/run/listener.sock"},
              {"listenerMetadata", "meta"},
              {"syscalls", {{{"names", {"mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
    auto fresh = linux_::compile_seccomp_cached(p, dir);
    auto hit = linux_::compile_seccomp_cached(p, dir);
    EXPECT_TRUE(same(hit, fresh));
    EXPECT_TRUE(hit.notify);
    EXPECT_EQ(hit.listener_path, "/run/listener.sock");
    EXPECT_EQ(hit.listener_metadata, "meta");
    EXPECT_EQ(entries().size(), 1u);
}

TEST_F(SeccompCache, ABadProfileIsAnErrorAndLeavesNoEntry) {
    json bad = {{"defaultAction", "SCMP_ACT_BOGUS"}};
    EXPECT_THROW(linux_::compile_seccomp_cached(bad, dir), error);
    EXPECT_TRUE(entries().empty());
}
