#include "core/cgroup/device_filter.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string>

#include "core/base/error.h"

namespace pieces::cgroup {
namespace {

[[noreturn]] void bad_rule(std::string_view text, const std::string& why) {
    throw error("device rule \"" + std::string(text) + "\": " + why);
}

// "*" or a number that fits an instruction's 32-bit immediate (real majors and minors do).
int64_t device_number(std::string_view text, std::string_view part) {
    if (part == "*") return -1;
    int64_t n = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || n < 0 || n > INT32_MAX)
        bad_rule(text, "bad device number \"" + std::string(part) + "\"");
    return n;
}

// Instruction builders, one per shape the program uses.
bpf_insn make(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn load_u32(uint8_t dst, uint8_t base, size_t offset) {
    return make(BPF_LDX | BPF_MEM | BPF_W, dst, base, static_cast<int16_t>(offset), 0);
}
bpf_insn alu(uint8_t op, uint8_t dst, int32_t imm) { return make(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn alu_reg(uint8_t op, uint8_t dst, uint8_t src) { return make(BPF_ALU64 | op | BPF_X, dst, src, 0, 0); }
// Jumps are created with offset 0 and aimed once the target is known.
bpf_insn jump(uint8_t op, uint8_t dst, int32_t imm) { return make(BPF_JMP | op | BPF_K, dst, 0, 0, imm); }
bpf_insn jump_reg(uint8_t op, uint8_t dst, uint8_t src) { return make(BPF_JMP | op | BPF_X, dst, src, 0, 0); }
bpf_insn exit_insn() { return make(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Registers of the program (r1 holds the context on entry).
constexpr uint8_t r_result = BPF_REG_0, r_ctx = BPF_REG_1, r_type = BPF_REG_2, r_request = BPF_REG_3,
                  r_major = BPF_REG_4, r_minor = BPF_REG_5, r_decided = BPF_REG_6, r_allowed = BPF_REG_7,
                  r_tmp = BPF_REG_8;
constexpr int32_t all_access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

// Points the jump at `from` to the instruction at `to`.
void aim(std::vector<bpf_insn>& prog, size_t from, size_t to) {
    auto off = static_cast<int64_t>(to) - static_cast<int64_t>(from) - 1;
    if (off > INT16_MAX) throw error("cgroup v2 device filter: too many device rules for one program");
    prog[from].off = static_cast<int16_t>(off);
}

}  // namespace

device_rule parse_device_rule(bool allow, std::string_view text) {
    device_rule r;
    r.allow = allow;
    if (text.empty()) bad_rule(text, "empty");
    r.type = text[0];
    // The kernel reads "a" as every device with every access, whatever follows.
    if (r.type == 'a') return r;
    if (r.type != 'c' && r.type != 'b') bad_rule(text, "type must be a, b or c");
    size_t colon = text.find(':'), space = text.find(' ', 2);
    if (text.size() < 2 || text[1] != ' ' || colon == std::string_view::npos || space == std::string_view::npos || colon > space)
        bad_rule(text, "expected \"TYPE MAJOR:MINOR ACCESS\"");
    r.major = device_number(text, text.substr(2, colon - 2));
    r.minor = device_number(text, text.substr(colon + 1, space - colon - 1));
    r.access = 0;
    for (char c : text.substr(space + 1)) {
        if (c == 'm') r.access |= BPF_DEVCG_ACC_MKNOD;
        else if (c == 'r') r.access |= BPF_DEVCG_ACC_READ;
        else if (c == 'w') r.access |= BPF_DEVCG_ACC_WRITE;
        else bad_rule(text, "access must be made of r, w and m");
    }
    if (r.access == 0) bad_rule(text, "no access given");
    return r;
}

std::vector<bpf_insn> device_filter_program(const std::vector<device_rule>& rules) {
    // Only the rules after the last "a" count; that rule (or, with none, v1's inherited
    // allow-all) decides what they leave undecided.
    size_t first = 0;
    bool default_allow = true;
    for (size_t i = 0; i < rules.size(); ++i) {
        if (rules[i].type != 'a') continue;
        first = i + 1;
        default_allow = rules[i].allow;
    }

    std::vector<bpf_insn> p = {
        load_u32(r_tmp, r_ctx, offsetof(bpf_cgroup_dev_ctx, access_type)),
        alu_reg(BPF_MOV, r_type, r_tmp),
        alu(BPF_AND, r_type, 0xffff),
        alu_reg(BPF_MOV, r_request, r_tmp),
        alu(BPF_RSH, r_request, 16),
        load_u32(r_major, r_ctx, offsetof(bpf_cgroup_dev_ctx, major)),
        load_u32(r_minor, r_ctx, offsetof(bpf_cgroup_dev_ctx, minor)),
        alu(BPF_MOV, r_decided, 0),  // access bits some later rule has ruled on
        alu(BPF_MOV, r_allowed, 0),  // those of them it allowed
    };
    std::vector<size_t> to_decision;
    // Newest rule first: a bit is decided by the first rule met that matches and names it.
    for (size_t i = rules.size(); i-- > first;) {
        const device_rule& r = rules[i];
        if (r.type != 'c' && r.type != 'b') throw error("cgroup v2 device filter: unknown device type '" + std::string(1, r.type) + "'");
        if (r.major > INT32_MAX || r.minor > INT32_MAX) throw error("cgroup v2 device filter: device number out of range");
        auto access = static_cast<int32_t>(r.access & all_access);
        std::vector<size_t> to_next;
        auto unless_equal = [&](uint8_t reg, int64_t value) {
            to_next.push_back(p.size());
            p.push_back(jump(BPF_JNE, reg, static_cast<int32_t>(value)));
        };
        unless_equal(r_type, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
        if (r.major >= 0) unless_equal(r_major, r.major);
        if (r.minor >= 0) unless_equal(r_minor, r.minor);
        if (r.allow) {
            // allowed |= access & ~decided
            p.push_back(alu_reg(BPF_MOV, r_tmp, r_decided));
            p.push_back(alu(BPF_XOR, r_tmp, all_access));
            p.push_back(alu(BPF_AND, r_tmp, access));
            p.push_back(alu_reg(BPF_OR, r_allowed, r_tmp));
        }
        p.push_back(alu(BPF_OR, r_decided, access));
        // Done as soon as every requested bit is decided.
        p.push_back(alu_reg(BPF_MOV, r_tmp, r_request));
        p.push_back(alu_reg(BPF_AND, r_tmp, r_decided));
        to_decision.push_back(p.size());
        p.push_back(jump_reg(BPF_JEQ, r_tmp, r_request));
        for (size_t j : to_next) aim(p, j, p.size());
    }
    size_t decision = p.size();
    for (size_t j : to_decision) aim(p, j, decision);
    if (default_allow) {
        // allowed |= ~decided
        p.push_back(alu_reg(BPF_MOV, r_tmp, r_decided));
        p.push_back(alu(BPF_XOR, r_tmp, all_access));
        p.push_back(alu_reg(BPF_OR, r_allowed, r_tmp));
    }
    // Allow (1) when every requested bit is allowed, else deny (0).
    p.push_back(alu(BPF_MOV, r_result, 1));
    p.push_back(alu_reg(BPF_AND, r_allowed, r_request));
    size_t skip = p.size();
    p.push_back(jump_reg(BPF_JEQ, r_allowed, r_request));
    p.push_back(alu(BPF_MOV, r_result, 0));
    aim(p, skip, p.size());
    p.push_back(exit_insn());
    return p;
}

namespace {

[[noreturn]] void fail(std::string_view step, int err, const std::string& detail = {}) {
    throw error("cgroup v2 device filter: " + describe_syscall(step, {}, err) + detail, err);
}

long bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

uint64_t ptr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

unique_fd load(const std::vector<bpf_insn>& program) {
    static constexpr char license[] = "Apache-2.0";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = ptr(program.data());
    attr.insn_cnt = static_cast<uint32_t>(program.size());
    attr.license = ptr(license);
    std::memcpy(attr.prog_name, device_filter_name.data(), device_filter_name.size());
    long fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0) return unique_fd(static_cast<int>(fd));
    int err = errno;
    if (err != EINVAL && err != EACCES) fail("load BPF program", err);
    // Rejected by the verifier: load again with its log, whose last line says why.
    std::string log(1 << 16, '\0');
    attr.log_level = 1;
    attr.log_buf = ptr(log.data());
    attr.log_size = static_cast<uint32_t>(log.size());
    fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0) return unique_fd(static_cast<int>(fd));
    log.resize(std::strlen(log.c_str()));
    while (!log.empty() && log.back() == '\n') log.pop_back();
    std::string last = log.substr(log.rfind('\n') + 1);
    fail("load BPF program", err, last.empty() ? "" : " (verifier: " + last + ")");
}

bpf_prog_info info_of(borrowed_fd prog) {
    bpf_prog_info info{};
    bpf_attr attr{};
    attr.info.bpf_fd = static_cast<uint32_t>(prog.get());
    attr.info.info_len = sizeof info;
    attr.info.info = ptr(&info);
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, attr) < 0) fail("read BPF program info", errno);
    return info;
}

}  // namespace

std::vector<uint32_t> attached_device_programs(borrowed_fd cgroup_dir) {
    std::vector<uint32_t> ids(16);
    for (;;) {
        bpf_attr attr{};
        attr.query.target_fd = static_cast<uint32_t>(cgroup_dir.get());
        attr.query.attach_type = BPF_CGROUP_DEVICE;
        attr.query.prog_ids = ptr(ids.data());
        attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
        if (bpf(BPF_PROG_QUERY, attr) == 0) {
            ids.resize(attr.query.prog_cnt);
            return ids;
        }
        // Too many for the buffer: the kernel said how many there are.
        if (errno == ENOSPC && attr.query.prog_cnt > ids.size()) {
            ids.resize(attr.query.prog_cnt);
            continue;
        }
        fail("query attached BPF programs", errno);
    }
}

void attach_device_filter(borrowed_fd cgroup_dir, const std::vector<bpf_insn>& program) {
    unique_fd prog = load(program);
    uint32_t id = info_of(prog).id;
    bpf_attr attr{};
    attr.target_fd = static_cast<uint32_t>(cgroup_dir.get());
    attr.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf(BPF_PROG_ATTACH, attr) < 0) fail("attach BPF program", errno);
    // The new rules are in force (with the old ones, which can only deny more): now drop the old.
    for (uint32_t old_id : attached_device_programs(cgroup_dir)) {
        if (old_id == id) continue;
        bpf_attr get{};
        get.prog_id = old_id;
        long fd = bpf(BPF_PROG_GET_FD_BY_ID, get);
        if (fd < 0 && errno == ENOENT) continue;  // detached meanwhile
        if (fd < 0) fail("open attached BPF program", errno);
        unique_fd old(static_cast<int>(fd));
        bpf_prog_info old_info = info_of(old);
        if (std::string_view(old_info.name, ::strnlen(old_info.name, sizeof old_info.name)) != device_filter_name) continue;
        bpf_attr detach{};
        detach.target_fd = static_cast<uint32_t>(cgroup_dir.get());
        detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
        detach.attach_type = BPF_CGROUP_DEVICE;
        if (bpf(BPF_PROG_DETACH, detach) < 0 && errno != ENOENT) fail("detach the previous BPF program", errno);
    }
}

}  // namespace pieces::cgroup
