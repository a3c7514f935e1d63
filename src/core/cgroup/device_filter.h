// The cgroup v2 device controller: device rules compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
// program and attached to a container's cgroup, written by hand against the bpf(2) syscall.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/base/unique_fd.h"

namespace pieces::cgroup {

/// One rule of linux.resources.devices, as the v1 devices cgroup reads it.
struct device_rule {
    bool allow = false;
    char type = 'a';       ///< 'a' (every device, every access), 'c' or 'b'
    int64_t major = -1;    ///< -1 for any
    int64_t minor = -1;    ///< -1 for any
    uint32_t access = 7;   ///< BPF_DEVCG_ACC_* bits: mknod 1, read 2, write 4
};

/// Parses a rule in the devices cgroup's text form: "c 1:3 rwm", "b *:* m", "a".
device_rule parse_device_rule(bool allow, std::string_view text);

/// The program deciding one access (device type, major, minor, requested access bits) by the
/// rules. The last rule that matches the device decides each requested bit; a request passes
/// when every bit it asks for is allowed. A type "a" rule resets everything before it to
/// allow or deny all; with none, what no rule decides is allowed, as in a new v1 cgroup.
std::vector<bpf_insn> device_filter_program(const std::vector<device_rule>& rules);

/// The name our programs carry in the kernel, which tells them apart from others' programs.
inline constexpr std::string_view device_filter_name = "pieces_devices";

/// Loads `program`, attaches it to the cgroup2 directory `cgroup_dir` (BPF_F_ALLOW_MULTI),
/// then detaches the programs of ours attached there before, so rules replace, never stack.
/// Errors read "cgroup v2 device filter: <step>: <strerror>".
void attach_device_filter(borrowed_fd cgroup_dir, const std::vector<bpf_insn>& program);

/// The ids of the device programs attached to the cgroup itself (not inherited ones).
std::vector<uint32_t> attached_device_programs(borrowed_fd cgroup_dir);

}  // namespace pieces::cgroup
