// linux.seccomp: compiled with libseccomp in the runtime, loaded by the init as raw BPF.
#pragma once

#include <linux/filter.h>

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/unique_fd.h"

namespace pieces::linux_ {

/// A compiled filter: BPF instructions plus the seccomp(2) flags to load it with.
struct seccomp_program {
    std::vector<sock_filter> bpf;
    unsigned flags = 0;         ///< SECCOMP_FILTER_FLAG_*
    bool notify = false;        ///< uses SCMP_ACT_NOTIFY: loading returns a listener fd
    std::string listener_path;  ///< where the listener fd goes (linux.seccomp.listenerPath)
    std::string listener_metadata;
};

/// Compiles config.json's linux.seccomp; errors name the field. Unknown syscall names are
/// skipped (the kernel may not have them); an unknown action, operator, arch or flag is an error.
seccomp_program compile_seccomp(const nlohmann::json& seccomp);

/// Loads the filter on the calling thread; returns the listener fd when it uses NOTIFY.
unique_fd load_seccomp(const seccomp_program& prog);

/// Hands a notify listener fd to linux.seccomp.listenerPath with the container process state
/// (ociVersion, fds ["seccompFd"], pid, metadata, state), as the runtime-spec describes.
void send_seccomp_listener(const seccomp_program& prog, borrowed_fd listener, pid_t pid, const std::string& state_json);

/// The action, operator, architecture and flag names this build knows (for `features`).
std::vector<std::string> seccomp_action_names();
std::vector<std::string> seccomp_operator_names();
std::vector<std::string> seccomp_arch_names();
std::vector<std::string> seccomp_flag_names();
/// The flags this kernel accepts.
std::vector<std::string> seccomp_supported_flag_names();

}  // namespace pieces::linux_
