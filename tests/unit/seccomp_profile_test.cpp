#include "core/image/seccomp_profile.h"

#include <seccomp.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <set>

#include "core/base/error.h"
#include "error_message.h"
#include "core/linux/seccomp.h"

using namespace pieces;
using namespace pieces::image;
using json = nlohmann::json;
using pieces::test_support::message_of;

namespace {

const std::vector<std::string> docker_default_caps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",           "CAP_MKNOD",      "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP",      "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",    "CAP_AUDIT_WRITE"};

// "ALLOW", "ERRNO 1", ... for the rule without arguments naming `name`; "" when none does.
std::string plain_action(const json& profile, const std::string& name) {
    for (const json& r : profile["syscalls"]) {
        if (r.contains("args")) continue;
        for (const json& n : r["names"])
            if (n == name) {
                std::string a = r["action"].get<std::string>().substr(9);
                return r.contains("errnoRet") ? a + " " + std::to_string(r["errnoRet"].get<int>()) : a;
            }
    }
    return "";
}

std::set<std::string> all_names(const json& profile) {
    std::set<std::string> out;
    for (const json& r : profile["syscalls"])
        for (const json& n : r["names"]) out.insert(n.get<std::string>());
    return out;
}

}  // namespace

TEST(SeccompProfile, DefaultIsAnAllowlistWithEnosysForTheRest) {
    json p = default_seccomp_profile(docker_default_caps, {6, 1});
    EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
    EXPECT_EQ(p["defaultErrnoRet"], ENOSYS);
    EXPECT_EQ(p["architectures"][0], seccomp_architectures().front());
#if defined(__x86_64__)
    EXPECT_EQ(p["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
    for (const char* n : {"read", "openat", "execve", "futex", "rseq", "statx", "faccessat2", "chroot", "ptrace", "mmap2"})
        EXPECT_EQ(plain_action(p, n), "ALLOW") << n;
    for (const char* n : {"mount", "umount2", "pivot_root", "move_mount", "fsopen", "setns", "keyctl", "add_key",
                          "kexec_load", "reboot", "init_module", "swapon", "bpf", "perf_event_open", "io_uring_setup",
                          "userfaultfd", "open_by_handle_at", "settimeofday", "clock_settime", "iopl", "acct", "syslog"})
        EXPECT_EQ(plain_action(p, n), "ERRNO " + std::to_string(EPERM)) << n;
    EXPECT_EQ(plain_action(p, "clone3"), "ERRNO " + std::to_string(ENOSYS));
    EXPECT_EQ(plain_action(p, "ustat"), "ERRNO " + std::to_string(ENOSYS));
    EXPECT_EQ(plain_action(p, "clone"), "") << "clone is only allowed by its flags";
}

TEST(SeccompProfile, CapabilitiesLiftTheirSyscalls) {
    std::vector<std::string> caps = docker_default_caps;
    caps.insert(caps.end(), {"CAP_SYS_ADMIN", "CAP_SYS_TIME", "CAP_SYS_BOOT"});
    json p = default_seccomp_profile(caps, {6, 1});
    for (const char* n : {"mount", "setns", "bpf", "settimeofday", "reboot", "clone", "clone3", "unshare"})
        EXPECT_EQ(plain_action(p, n), "ALLOW") << n;
    EXPECT_EQ(plain_action(p, "keyctl"), "ERRNO 1") << "no capability opens the key store";
    EXPECT_EQ(plain_action(p, "init_module"), "ERRNO 1");
    json no_chroot = default_seccomp_profile({}, {6, 1});
    EXPECT_EQ(plain_action(no_chroot, "chroot"), "ERRNO 1");
}

TEST(SeccompProfile, PtraceOnlyWhereTheKernelRechecksAfterIt) {
    EXPECT_EQ(plain_action(default_seccomp_profile({}, {4, 7}), "ptrace"), "ERRNO 1");
    EXPECT_EQ(plain_action(default_seccomp_profile({"CAP_SYS_PTRACE"}, {4, 7}), "ptrace"), "ALLOW");
    EXPECT_EQ(plain_action(default_seccomp_profile({}, {4, 8}), "ptrace"), "ALLOW");
}

TEST(SeccompProfile, CloneWithANamespaceFlagIsRefused) {
    json p = default_seccomp_profile(docker_default_caps, {6, 1});
    int allow = 0, refuse = 0;
    for (const json& r : p["syscalls"]) {
        if (r["names"] != json({"clone"})) continue;
        ASSERT_EQ(r["args"].size(), 1u);
        EXPECT_EQ(r["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        if (r["action"] == "SCMP_ACT_ALLOW") {
            ++allow;
            EXPECT_EQ(r["args"][0]["valueTwo"], 0);
            EXPECT_EQ(r["args"][0]["value"].get<uint64_t>() & CLONE_NEWUSER, static_cast<uint64_t>(CLONE_NEWUSER));
        } else {
            ++refuse;
            EXPECT_EQ(r["args"][0]["value"], r["args"][0]["valueTwo"]);
        }
    }
    EXPECT_EQ(allow, 1);
    EXPECT_EQ(refuse, 8);
}

TEST(SeccompProfile, EveryNameIsASyscallLibseccompKnows) {
    for (const auto& caps : {std::vector<std::string>{}, std::vector<std::string>{"CAP_SYS_ADMIN"}})
        for (const auto& n : all_names(default_seccomp_profile(caps, {6, 1})))
            EXPECT_NE(seccomp_syscall_resolve_name(n.c_str()), __NR_SCMP_ERROR) << n << " (a typo would be skipped silently)";
}

TEST(SeccompProfile, EveryNativeSyscallIsPlaced) {
    // A syscall left out would get ENOSYS by default: each must be allowed, refused or obsolete on purpose.
    std::set<std::string> names = all_names(default_seccomp_profile({}, {6, 1}));
    uint32_t native = seccomp_arch_native();
    for (int nr = 0; nr < 1024; ++nr) {
        char* name = seccomp_syscall_resolve_num_arch(native, nr);
        if (!name) continue;
        EXPECT_TRUE(names.count(name)) << name << " is not placed in the default profile";
        std::free(name);
    }
}

TEST(SeccompProfile, DefaultCompiles) {
    EXPECT_NO_THROW(linux_::compile_seccomp(default_seccomp_profile(docker_default_caps)));
    EXPECT_NO_THROW(linux_::compile_seccomp(default_seccomp_profile({"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"})));
}

TEST(SeccompProfile, DockerFormatArchMapIncludesAndExcludes) {
    std::vector<std::string> ours = seccomp_architectures();
    std::string native = ours.front();
    json subs(std::vector<std::string>(ours.begin() + 1, ours.end()));
    json docker = {
        {"defaultAction", "SCMP_ACT_ERRNO"},
        {"defaultErrnoRet", 1},
        {"archMap", {{{"architecture", "SCMP_ARCH_OTHER"}, {"subArchitectures", {"SCMP_ARCH_X"}}},
                     {{"architecture", native}, {"subArchitectures", subs}}}},
        {"syscalls",
         {{{"names", {"read", "write"}}, {"action", "SCMP_ACT_ALLOW"}, {"comment", "io"}},
          {{"name", "getpid"}, {"action", "SCMP_ACT_ALLOW"}},
          {{"names", {"mount"}}, {"action", "SCMP_ACT_ALLOW"}, {"includes", {{"caps", {"CAP_SYS_ADMIN"}}}}},
          {{"names", {"chroot"}}, {"action", "SCMP_ACT_ERRNO"}, {"excludes", {{"caps", {"CAP_SYS_CHROOT"}}}}},
          {{"names", {"ptrace"}}, {"action", "SCMP_ACT_ALLOW"}, {"includes", {{"minKernel", "4.8"}}}},
          {{"names", {"iopl"}}, {"action", "SCMP_ACT_ALLOW"}, {"includes", {{"arches", {"s390x-not-us"}}}}},
          {{"names", {"kcmp"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38},
           {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}}}}}};
    json out = translate_seccomp_profile(docker, {"CAP_SYS_CHROOT"}, "f.json", {4, 7});
    EXPECT_EQ(out["architectures"], json(ours));
    EXPECT_EQ(out["defaultErrnoRet"], 1);
    EXPECT_FALSE(out.contains("archMap"));
    std::set<std::string> names = all_names(out);
    EXPECT_EQ(names, (std::set<std::string>{"read", "write", "getpid", "kcmp"}));
    EXPECT_EQ(out["syscalls"][2]["errnoRet"], 38);
    EXPECT_EQ(out["syscalls"][2]["args"][0]["op"], "SCMP_CMP_EQ");

    json later = translate_seccomp_profile(docker, {"CAP_SYS_ADMIN"}, "f.json", {5, 10});
    names = all_names(later);
    for (const char* n : {"mount", "chroot", "ptrace"}) EXPECT_TRUE(names.count(n)) << n;
    EXPECT_NO_THROW(linux_::compile_seccomp(later));
}

TEST(SeccompProfile, WhatCannotBeTranslatedNamesTheFileAndField) {
    auto msg = [](const json& profile) { return message_of([&] { translate_seccomp_profile(profile, {}, "p.json", {6, 1}); }); };
    EXPECT_EQ(msg(json::array()), "p.json: expected a JSON object (a seccomp profile)");
    EXPECT_EQ(msg({{"syscalls", json::array()}}), "p.json: defaultAction: missing");
    EXPECT_EQ(msg({{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_X86"}}, {"archMap", json::array()}}),
              "p.json: archMap: give architectures or archMap, not both");
    EXPECT_EQ(msg({{"defaultAction", "SCMP_ACT_ALLOW"}, {"extra", 1}}), "p.json: extra: not a field of a seccomp profile that pieces knows");
    EXPECT_EQ(msg({{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", {"read"}}}}}}), "p.json: syscalls[0].action: missing");
    EXPECT_EQ(msg({{"defaultAction", "SCMP_ACT_ALLOW"},
                   {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_ERRNO"}, {"includes", {{"minKernel", "new"}}}}}}}),
              "p.json: syscalls[0].includes.minKernel: expected a version such as \"4.8\", not \"new\"");
    EXPECT_NE(msg({{"defaultAction", "SCMP_ACT_ALLOW"},
                   {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_ERRNO"}, {"includes", {{"os", "linux"}}}}}}})
                  .find("syscalls[0].includes.os: not supported"),
              std::string::npos);
}

TEST(SeccompProfile, ChoiceUnconfinedPrivilegedAndFile) {
    seccomp_choice builtin;
    EXPECT_TRUE(container_seccomp(builtin, docker_default_caps, false).has_value());
    EXPECT_FALSE(container_seccomp(builtin, docker_default_caps, true).has_value()) << "--privileged: no filter";
    EXPECT_FALSE(container_seccomp(seccomp_choice::parse("unconfined"), docker_default_caps, false).has_value());

    seccomp_choice file;
    file.mode = seccomp_choice::kind::file;
    file.path = "/x/p.json";
    file.profile = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_NOPE"}}}}};
    std::string msg = message_of([&] { container_seccomp(file, {}, false); });
    EXPECT_EQ(msg.rfind("--security-opt seccomp=/x/p.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("SCMP_ACT_NOPE"), std::string::npos) << msg;
    file.profile["syscalls"][0]["action"] = "SCMP_ACT_ERRNO";
    EXPECT_TRUE(container_seccomp(file, {}, true).has_value()) << "a profile asked for applies even when privileged";

    EXPECT_NE(message_of([] { seccomp_choice::parse("/no/such/profile.json"); }).find("--security-opt seccomp=/no/such/profile.json: "),
              std::string::npos);
}

TEST(SeccompProfile, KernelVersion) {
    EXPECT_EQ(kernel_version::parse("6.1.0-18-amd64").major, 6);
    EXPECT_EQ(kernel_version::parse("6.1.0-18-amd64").minor, 1);
    EXPECT_EQ(kernel_version::parse("x").major, 0);
    EXPECT_TRUE(kernel_version({4, 10}).at_least({4, 8}));
    EXPECT_FALSE(kernel_version({3, 19}).at_least({4, 8}));
}
