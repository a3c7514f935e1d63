#include "core/linux/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/socket.h"

namespace pieces::linux_ {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw error(where + ": " + what); }

const std::map<std::string, uint32_t>& action_table() {
    static const std::map<std::string, uint32_t> t = {
        {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD},   {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
        {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS}, {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
        {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},     {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
        {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},        {"SCMP_ACT_LOG", SCMP_ACT_LOG},
        {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY},
    };
    return t;
}

const std::map<std::string, scmp_compare>& operator_table() {
    static const std::map<std::string, scmp_compare> t = {
        {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    return t;
}

const std::map<std::string, unsigned>& flag_table() {
    static const std::map<std::string, unsigned> t = {
        {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
        {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
        {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
        {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 1U << 5},  // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    };
    return t;
}

constexpr const char* arch_names[] = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",       "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",      "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
};

// An action name with its errno/trace value: errnoRet, else the default errno (EPERM).
uint32_t action_of(const std::string& name, const json& errno_ret, uint32_t default_errno, const std::string& where) {
    auto it = action_table().find(name);
    if (it == action_table().end()) fail(where, "unknown seccomp action \"" + name + "\"");
    uint32_t ret = default_errno;
    if (!errno_ret.is_null()) {
        bool non_negative = errno_ret.is_number_unsigned() || (errno_ret.is_number_integer() && errno_ret.get<int64_t>() >= 0);
        if (!non_negative) fail(where, "errnoRet must be a non-negative integer");
        ret = errno_ret.get<uint32_t>();
    }
    if (it->second == SCMP_ACT_ERRNO(0)) return SCMP_ACT_ERRNO(ret);
    if (it->second == SCMP_ACT_TRACE(0)) return SCMP_ACT_TRACE(ret);
    return it->second;
}

std::string string_at(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) fail(where + "." + key, "expected a string");
    return it->get<std::string>();
}

uint64_t u64_at(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return 0;
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
        fail(where + "." + key, "expected a non-negative integer");
    return it->get<uint64_t>();
}

struct ctx_deleter {
    void operator()(void* c) const { seccomp_release(c); }
};
using filter_ctx = std::unique_ptr<void, ctx_deleter>;

void check_rc(int rc, const std::string& what) {
    if (rc < 0) throw_errno_code(-rc, what);
}

void add_rule(void* ctx, uint32_t action, int nr, const std::vector<scmp_arg_cmp>& conds, const std::string& where) {
    // libseccomp takes one condition per argument in a rule: conditions on the same argument
    // become separate rules (any of them matching applies the action).
    bool repeated = false;
    for (size_t i = 0; i < conds.size(); ++i)
        for (size_t j = i + 1; j < conds.size(); ++j)
            if (conds[i].arg == conds[j].arg) repeated = true;
    if (!repeated) {
        check_rc(seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()), conds.data()),
                 "seccomp rule " + where);
        return;
    }
    for (const auto& c : conds) check_rc(seccomp_rule_add_array(ctx, action, nr, 1, &c), "seccomp rule " + where);
}

}  // namespace

seccomp_program compile_seccomp(const json& sc) {
    seccomp_program prog;
    const std::string base = "linux.seccomp";
    uint32_t default_errno = EPERM;
    if (sc.contains("defaultErrnoRet") && !sc["defaultErrnoRet"].is_null())
        default_errno = static_cast<uint32_t>(u64_at(sc, "defaultErrnoRet", base));
    uint32_t default_action = action_of(string_at(sc, "defaultAction", base), json(), default_errno, base + ".defaultAction");
    if (default_action == SCMP_ACT_NOTIFY) fail(base + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");

    filter_ctx ctx(seccomp_init(default_action));
    if (!ctx) throw error(base + ": seccomp_init failed");
    // no_new_privs is ours to set (process.noNewPrivileges), not libseccomp's.
    check_rc(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "seccomp attribute");

    if (auto a = sc.find("architectures"); a != sc.end() && !a->is_null()) {
        size_t i = 0;
        for (const json& arch : *a) {
            std::string where = base + ".architectures[" + std::to_string(i++) + "]";
            if (!arch.is_string()) fail(where, "expected a string");
            std::string name = arch.get<std::string>();
            if (name.rfind("SCMP_ARCH_", 0) != 0) fail(where, "unknown architecture \"" + name + "\"");
            std::string lower = name.substr(10);
            for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            uint32_t token = seccomp_arch_resolve_name(lower.c_str());
            if (token == 0) fail(where, "unknown architecture \"" + name + "\"");
            int rc = seccomp_arch_add(ctx.get(), token);
            if (rc < 0 && rc != -EEXIST) check_rc(rc, "seccomp architecture " + name);
        }
    }
    if (auto f = sc.find("flags"); f != sc.end() && !f->is_null()) {
        size_t i = 0;
        for (const json& flag : *f) {
            std::string where = base + ".flags[" + std::to_string(i++) + "]";
            auto it = flag.is_string() ? flag_table().find(flag.get<std::string>()) : flag_table().end();
            if (it == flag_table().end()) fail(where, "unknown seccomp flag " + flag.dump());
            prog.flags |= it->second;
        }
    }
    if (auto s = sc.find("syscalls"); s != sc.end() && !s->is_null()) {
        size_t i = 0;
        for (const json& rule : *s) {
            std::string where = base + ".syscalls[" + std::to_string(i++) + "]";
            if (!rule.is_object()) fail(where, "expected an object");
            uint32_t action = action_of(string_at(rule, "action", where), rule.value("errnoRet", json()),
                                        default_errno, where + ".action");
            if (action == SCMP_ACT_NOTIFY) prog.notify = true;
            std::vector<scmp_arg_cmp> conds;
            if (auto args = rule.find("args"); args != rule.end() && !args->is_null()) {
                size_t k = 0;
                for (const json& arg : *args) {
                    std::string aw = where + ".args[" + std::to_string(k++) + "]";
                    auto op = operator_table().find(string_at(arg, "op", aw));
                    if (op == operator_table().end()) fail(aw + ".op", "unknown operator \"" + arg["op"].get<std::string>() + "\"");
                    uint64_t index = u64_at(arg, "index", aw);
                    if (index > 5) fail(aw + ".index", "must be 0 to 5");
                    conds.push_back({static_cast<unsigned>(index), op->second, u64_at(arg, "value", aw), u64_at(arg, "valueTwo", aw)});
                }
            }
            // A rule that does what the default does adds nothing (and libseccomp refuses it).
            if (action == default_action) continue;
            auto names = rule.find("names");
            if (names == rule.end() || !names->is_array()) fail(where + ".names", "expected an array of syscall names");
            for (const json& n : *names) {
                if (!n.is_string()) fail(where + ".names", "expected strings");
                int nr = seccomp_syscall_resolve_name(n.get<std::string>().c_str());
                if (nr == __NR_SCMP_ERROR) continue;  // not a syscall of this kernel or arch: skipped
                add_rule(ctx.get(), action, nr, conds, where + " (" + n.get<std::string>() + ")");
            }
        }
    }
    if (prog.notify) {
        prog.listener_path = sc.value("listenerPath", "");
        prog.listener_metadata = sc.value("listenerMetadata", "");
        if (prog.listener_path.empty()) fail(base + ".listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath");
        prog.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // The kernel takes TSYNC with a listener only when told to report a failed sync as ESRCH.
        if (prog.flags & SECCOMP_FILTER_FLAG_TSYNC) prog.flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    } else {
        // Killable waits concern the listener; without one the kernel refuses the flag.
        prog.flags &= ~flag_table().at("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }

    // Export the BPF now, in the runtime, so the init only has to hand it to the kernel.
    unique_fd mem(::memfd_create("seccomp-bpf", MFD_CLOEXEC));
    if (!mem) throw_errno("memfd_create");
    check_rc(seccomp_export_bpf(ctx.get(), mem.get()), "export seccomp filter");
    if (::lseek(mem.get(), 0, SEEK_SET) < 0) throw_errno("lseek");
    std::string bytes = read_all(mem);
    prog.bpf.resize(bytes.size() / sizeof(sock_filter));
    std::memcpy(prog.bpf.data(), bytes.data(), prog.bpf.size() * sizeof(sock_filter));
    return prog;
}

unique_fd load_seccomp(const seccomp_program& prog) {
    sock_fprog fprog{static_cast<unsigned short>(prog.bpf.size()), const_cast<sock_filter*>(prog.bpf.data())};
    long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog.flags, &fprog);
    if (rc < 0) throw_errno("load seccomp filter");
    return prog.notify ? unique_fd(static_cast<int>(rc)) : unique_fd();
}

void send_seccomp_listener(const seccomp_program& prog, borrowed_fd listener, pid_t pid, const std::string& state_json) {
    json msg = {{"ociVersion", "1.2.0"},
                {"fds", {"seccompFd"}},
                {"pid", pid},
                {"metadata", prog.listener_metadata},
                {"state", json::parse(state_json)}};
    with_context("seccomp listener " + quote(prog.listener_path), [&] {
        unique_fd sock = connect_unix_socket(prog.listener_path);
        send_with_fd(sock, listener, msg.dump(), "seccomp listener fd");
    });
}

std::vector<std::string> seccomp_action_names() {
    std::vector<std::string> out;
    for (const auto& [name, _] : action_table()) out.push_back(name);
    return out;
}

std::vector<std::string> seccomp_operator_names() {
    std::vector<std::string> out;
    for (const auto& [name, _] : operator_table()) out.push_back(name);
    return out;
}

std::vector<std::string> seccomp_arch_names() { return {std::begin(arch_names), std::end(arch_names)}; }

std::vector<std::string> seccomp_supported_flag_names() {
    std::vector<std::string> out;
    for (const auto& [name, flag] : flag_table()) {
        // With a null program the kernel checks the flags first: EFAULT means it knows them.
        unsigned probe = flag;
        if (name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") probe |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, probe, nullptr) < 0 && errno == EFAULT) out.push_back(name);
    }
    return out;
}

std::vector<std::string> seccomp_flag_names() {
    std::vector<std::string> out;
    for (const auto& [name, _] : flag_table()) out.push_back(name);
    return out;
}

}  // namespace pieces::linux_
