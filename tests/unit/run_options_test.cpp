#include "core/image/run_options.h"

#include <signal.h>

#include <gtest/gtest.h>

#include <map>

#include "core/base/error.h"
#include "error_message.h"

using namespace pieces;
using namespace pieces::image;

using pieces::test_support::message_of;

TEST(RunOptions, SizesWithDockersUnits) {
    EXPECT_EQ(parse_size("1024", "--memory"), 1024);
    EXPECT_EQ(parse_size("100b", "--memory"), 100);
    EXPECT_EQ(parse_size("64m", "--memory"), 64 << 20);
    EXPECT_EQ(parse_size("64M", "--memory"), 64 << 20);
    EXPECT_EQ(parse_size("512kb", "--memory"), 512 << 10);
    EXPECT_EQ(parse_size("1.5g", "--memory"), 1536LL << 20);
    EXPECT_EQ(parse_size("2GiB", "--memory"), 2LL << 30);
    EXPECT_EQ(parse_size("1t", "--memory"), 1LL << 40);
}

TEST(RunOptions, BadSizesNameTheFlagAndValue) {
    for (const char* bad : {"12x", "", "m", "-1", "1..2m", "1mm", "1e6", "12 m"}) {
        std::string msg = message_of([&] { parse_size(bad, "--memory"); });
        EXPECT_NE(msg.find("--memory \"" + std::string(bad) + "\""), std::string::npos) << bad << ": " << msg;
    }
}

TEST(RunOptions, CpusAsQuotaPerPeriod100000) {
    EXPECT_EQ(parse_cpus("1", 2), 100000);
    EXPECT_EQ(parse_cpus("1.5", 2), 150000);
    EXPECT_EQ(parse_cpus("0.25", 2), 25000);
    EXPECT_EQ(parse_cpus("0.01", 2), 1000);
    EXPECT_EQ(parse_cpus("2", 2), 200000);
    for (const char* bad : {"-1", "0", "0.001", "3", "abc", "1.5.0", ""})
        EXPECT_NE(message_of([&] { parse_cpus(bad, 2); }).find("--cpus \"" + std::string(bad) + "\""), std::string::npos) << bad;
}

TEST(RunOptions, Cpusets) {
    EXPECT_NO_THROW(check_cpuset("0", "--cpuset-cpus"));
    EXPECT_NO_THROW(check_cpuset("0-1,3", "--cpuset-cpus"));
    for (const char* bad : {"", "a", "1-", "3-1", "0,", "0;1"})
        EXPECT_NE(message_of([&] { check_cpuset(bad, "--cpuset-cpus"); }).find("--cpuset-cpus"), std::string::npos) << bad;
}

TEST(RunOptions, SignalsByNameShortNameOrNumber) {
    EXPECT_EQ(parse_stop_signal("SIGUSR1", "--stop-signal"), SIGUSR1);
    EXPECT_EQ(parse_stop_signal("USR2", "--stop-signal"), SIGUSR2);
    EXPECT_EQ(parse_stop_signal("sigquit", "--stop-signal"), SIGQUIT);
    EXPECT_EQ(parse_stop_signal("15", "--stop-signal"), SIGTERM);
    for (const char* bad : {"SIGNOPE", "0", "", "99", "-9"})
        EXPECT_NE(message_of([&] { parse_stop_signal(bad, "--stop-signal"); }).find("--stop-signal \"" + std::string(bad) + "\""),
                  std::string::npos)
            << bad;
}

TEST(RunOptions, EnvFileLines) {
    std::map<std::string, std::string> host = {{"FROM_HOST", "here"}};
    auto lookup = [&](const std::string& k) -> const char* {
        auto it = host.find(k);
        return it == host.end() ? nullptr : it->second.c_str();
    };
    std::string text =
        "# a comment\n"
        "\n"
        "A=1\n"
        "  B=two words = kept \n"
        "C=\"quoted\"\n"
        "FROM_HOST\n"
        "NOT_ON_HOST\n"
        "EMPTY=\n"
        "WIN=x\r\n";
    EXPECT_EQ(parse_env_file(text, lookup, "f"),
              (std::vector<std::string>{"A=1", "B=two words = kept ", "C=\"quoted\"", "FROM_HOST=here", "EMPTY=", "WIN=x"}));
    EXPECT_NE(message_of([&] { parse_env_file("=1\n", lookup, "f.env"); }).find("--env-file \"f.env\" line 1"), std::string::npos);
    EXPECT_NE(message_of([&] { parse_env_file("A=1\nBAD NAME=1\n", lookup, "f.env"); }).find("line 2"), std::string::npos);
}

TEST(RunOptions, CapabilityNames) {
    EXPECT_EQ(capability_flag("net_admin", "--cap-add"), "CAP_NET_ADMIN");
    EXPECT_EQ(capability_flag("CAP_SYS_ADMIN", "--cap-add"), "CAP_SYS_ADMIN");
    EXPECT_EQ(capability_flag("all", "--cap-drop"), "ALL");
    EXPECT_NE(message_of([] { capability_flag("FLY", "--cap-add"); }).find("--cap-add \"FLY\": unknown capability"), std::string::npos);
}

TEST(RunOptions, CapabilitySetsAsDockerMakesThem) {
    std::vector<std::string> base = {"CAP_CHOWN", "CAP_KILL"}, all = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"};
    EXPECT_EQ(effective_capabilities(base, all, {"CAP_NET_ADMIN"}, {"CAP_KILL"}), (std::vector<std::string>{"CAP_CHOWN", "CAP_NET_ADMIN"}));
    EXPECT_EQ(effective_capabilities(base, all, {"CAP_NET_ADMIN"}, {"ALL"}), (std::vector<std::string>{"CAP_NET_ADMIN"}));
    EXPECT_EQ(effective_capabilities(base, all, {"ALL"}, {"CAP_SYS_ADMIN"}),
              (std::vector<std::string>{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"}));
    EXPECT_EQ(effective_capabilities(base, all, {"CAP_CHOWN"}, {}), base);
}

TEST(RunOptions, TmpfsWithDockersDefaults) {
    auto t = tmpfs_mount::parse("/run/x/:size=1m,mode=700");
    EXPECT_EQ(t.destination, "/run/x");
    EXPECT_EQ(t.options, (std::vector<std::string>{"nosuid", "nodev", "noexec", "size=1m", "mode=700"}));
    EXPECT_EQ(tmpfs_mount::parse("/t").options.size(), 3u);
    EXPECT_THROW(tmpfs_mount::parse("rel"), error);
    EXPECT_THROW(tmpfs_mount::parse("/"), error);
}

TEST(RunOptions, MemoryFlagsAsDockerRelatesThem) {
    resource_limits r;
    r.memory = 64 << 20;
    nlohmann::json res = nlohmann::json::object();
    r.apply(res);
    EXPECT_EQ(res["memory"]["limit"], 64 << 20);
    EXPECT_EQ(res["memory"]["swap"], 128 << 20);  // as much swap as memory
    r.memory_swap = -1;
    res = nlohmann::json::object();
    r.apply(res);
    EXPECT_EQ(res["memory"]["swap"], -1);
    r.memory_swap = 32 << 20;
    EXPECT_NE(message_of([&] { r.check(); }).find("--memory-swap \"32m\": below --memory 64m"), std::string::npos);
    resource_limits only_swap;
    only_swap.memory_swap = 1 << 30;
    EXPECT_NE(message_of([&] { only_swap.check(); }).find("needs --memory"), std::string::npos);
    resource_limits tiny;
    tiny.memory = 1024;
    EXPECT_NE(message_of([&] { tiny.check(); }).find("--memory \"1k\": the minimum is 6m"), std::string::npos);
    tiny.memory = 1000;
    EXPECT_NE(message_of([&] { tiny.check(); }).find("--memory \"1000\""), std::string::npos);
    resource_limits cpu;
    cpu.cpu_quota = 50000;
    cpu.pids_limit = 10;
    res = nlohmann::json::object();
    cpu.apply(res);
    EXPECT_EQ(res["cpu"]["period"], 100000);
    EXPECT_EQ(res["cpu"]["quota"], 50000);
    EXPECT_EQ(res["pids"]["limit"], 10);
}

TEST(RunOptions, LabelsWithAndWithoutValues) {
    EXPECT_EQ(parse_label("tier=front", "--label"), (std::pair<std::string, std::string>{"tier", "front"}));
    EXPECT_EQ(parse_label("a=b=c", "--label"), (std::pair<std::string, std::string>{"a", "b=c"}));
    EXPECT_EQ(parse_label("flag", "--label"), (std::pair<std::string, std::string>{"flag", ""}));
    EXPECT_EQ(message_of([] { parse_label("=x", "--label"); }), "--label \"=x\": no label name before '='");
}

TEST(RunOptions, LabelFilesSkipCommentsAndBlanks) {
    auto labels = parse_label_file("# team labels\n\n  tier=front\r\nflag\nurl=http://x/?a=1 \n", "l.txt");
    std::vector<std::pair<std::string, std::string>> want = {{"tier", "front"}, {"flag", ""}, {"url", "http://x/?a=1 "}};
    EXPECT_EQ(labels, want);
    EXPECT_EQ(message_of([] { parse_label_file("a=1\n=oops\n", "l.txt"); }),
              "--label-file \"l.txt\" line 2 \"=oops\": no label name before '='");
}
