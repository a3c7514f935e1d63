#include "core/spec/config.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include "core/base/error.h"
#include "core/spec/default_spec.h"

using namespace pieces;
using json = nlohmann::json;

namespace {

json minimal() {
    return json{{"ociVersion", "1.2.0"},
                {"root", {{"path", "rootfs"}}},
                {"process", {{"args", {"sh"}}, {"cwd", "/"}}},
                {"linux", {{"namespaces", {{{"type", "mount"}}}}}}};
}

// The message of the error parse_config throws for `doc`, or "" when it parses.
std::string parse_error(const json& doc) {
    try {
        spec::parse_config(doc);
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Config, ParsesTheDefaultSpec) {
    spec::config c = spec::parse_config(spec::default_config(false));
    ASSERT_TRUE(c.process);
    EXPECT_EQ(c.process->args, std::vector<std::string>{"sh"});
    EXPECT_TRUE(c.process->terminal);
    EXPECT_TRUE(c.root_readonly);
    EXPECT_EQ(c.mounts.size(), 7u);
    EXPECT_TRUE(c.linux.find(spec::ns_type::network));
    EXPECT_FALSE(c.linux.find(spec::ns_type::user));
    ASSERT_EQ(c.process->rlimits.size(), 1u);
    EXPECT_EQ(c.process->rlimits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(c.process->capabilities->bounding, (std::vector<int>{29, 5, 10}));
}

TEST(Config, RootlessDefaultHasUserNamespaceAndNoNetwork) {
    spec::config c = spec::parse_config(spec::default_config(true));
    EXPECT_TRUE(c.linux.find(spec::ns_type::user));
    EXPECT_FALSE(c.linux.find(spec::ns_type::network));
    ASSERT_EQ(c.linux.uid_mappings.size(), 1u);
    EXPECT_EQ(c.linux.uid_mappings[0].container_id, 0u);
}

TEST(Config, ReadsEveryProcessField) {
    json d = minimal();
    d["process"] = {{"terminal", true},
                    {"consoleSize", {{"height", 24}, {"width", 80}}},
                    {"user", {{"uid", 1000}, {"gid", 100}, {"umask", 18}, {"additionalGids", {5, 6}}}},
                    {"args", {"/bin/app", "-x"}},
                    {"env", {"A=1"}},
                    {"cwd", "/work"},
                    {"noNewPrivileges", true},
                    {"oomScoreAdj", -500},
                    {"capabilities", {{"ambient", {"CAP_NET_RAW"}}, {"bounding", {"CAP_CHECKPOINT_RESTORE"}}}}};
    spec::config c = spec::parse_config(d);
    const auto& p = *c.process;
    EXPECT_EQ(p.user.uid, 1000u);
    EXPECT_EQ(p.user.gid, 100u);
    EXPECT_EQ(*p.user.umask, 18u);
    EXPECT_EQ(p.user.additional_gids, (std::vector<gid_t>{5, 6}));
    EXPECT_EQ(p.console_size->first, 24u);
    EXPECT_EQ(p.cwd, "/work");
    EXPECT_TRUE(p.no_new_privileges);
    EXPECT_EQ(*p.oom_score_adj, -500);
    EXPECT_EQ(p.capabilities->ambient, std::vector<int>{13});
    EXPECT_EQ(p.capabilities->bounding, std::vector<int>{40});
}

TEST(Config, ErrorsNameTheField) {
    json d = minimal();
    d["linux"]["namespaces"].push_back({{"type", "bogus"}});
    EXPECT_EQ(parse_error(d), "linux.namespaces[1].type: unknown namespace type \"bogus\"");

    d = minimal();
    d["process"]["args"] = "sh";
    EXPECT_EQ(parse_error(d), "process.args: expected an array, got a string");

    d = minimal();
    d["process"]["capabilities"] = {{"effective", {"CAP_CHOWN", "CAP_FLY"}}};
    EXPECT_EQ(parse_error(d), "process.capabilities.effective[1]: unknown capability \"CAP_FLY\"");

    d = minimal();
    d["process"]["rlimits"] = {{{"type", "RLIMIT_BOGUS"}, {"soft", 1}, {"hard", 1}}};
    EXPECT_EQ(parse_error(d), "process.rlimits[0].type: unknown rlimit \"RLIMIT_BOGUS\"");

    d = minimal();
    d["hooks"] = {{"prestart", {{{"path", "relative/hook"}}}}};
    EXPECT_EQ(parse_error(d), "hooks.prestart[0].path: must be an absolute path");
}

TEST(Config, ValidatesAcrossFields) {
    json d = minimal();
    d.erase("root");
    EXPECT_EQ(parse_error(d), "root.path: is required");

    d = minimal();
    d["process"]["cwd"] = "relative";
    EXPECT_EQ(parse_error(d), "process.cwd: must be an absolute path");

    d = minimal();
    d["linux"]["namespaces"].push_back({{"type", "user"}});
    EXPECT_NE(parse_error(d).find("needs uid and gid mappings"), std::string::npos);

    d = minimal();
    d["linux"]["namespaces"].push_back({{"type", "mount"}});
    EXPECT_EQ(parse_error(d), "linux.namespaces[1].type: duplicate namespace \"mount\"");

    d = minimal();
    d["hostname"] = "box";
    EXPECT_EQ(parse_error(d), "hostname: setting the hostname needs a uts namespace");

    d = minimal();
    d["linux"]["timeOffsets"] = {{"monotonic", {{"secs", 10}}}};
    EXPECT_NE(parse_error(d).find("time namespace"), std::string::npos);
}

TEST(Config, NamespaceTypesMapToCloneFlags) {
    EXPECT_EQ(spec::ns_clone_flag(spec::ns_type::network), CLONE_NEWNET);
    EXPECT_EQ(spec::ns_clone_flag(spec::ns_type::time), CLONE_NEWTIME);
    EXPECT_STREQ(spec::ns_proc_name(spec::ns_type::network), "net");
    EXPECT_STREQ(spec::ns_proc_name(spec::ns_type::mount), "mnt");
}

TEST(Config, CapabilityNames) {
    EXPECT_EQ(spec::capability_from_name("CAP_CHOWN"), 0);
    EXPECT_EQ(spec::capability_from_name("CAP_SYS_ADMIN"), 21);
    EXPECT_EQ(spec::capability_from_name("CAP_CHECKPOINT_RESTORE"), 40);
    EXPECT_EQ(spec::capability_from_name("sys_admin"), -1);
    EXPECT_EQ(spec::capability_name(21), "CAP_SYS_ADMIN");
}

TEST(Config, HooksRoundTrip) {
    std::vector<spec::hook> hooks = {{"/bin/h", {"h", "a"}, {"X=1"}, 5}, {"/bin/g", {}, {}, std::nullopt}};
    auto back = spec::parse_hooks(spec::hooks_to_json(hooks), "hooks");
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].args, hooks[0].args);
    EXPECT_EQ(back[0].env, hooks[0].env);
    EXPECT_EQ(*back[0].timeout, 5);
    EXPECT_FALSE(back[1].timeout);
}
