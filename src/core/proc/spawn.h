// Creating a container's init: clone into namespaces, the setup steps, parking on the exec fifo.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "core/base/unique_fd.h"
#include "core/linux/seccomp.h"
#include "core/spec/config.h"

namespace pieces::proc {

/// Everything the init needs; the child reads it from the memory it shares with the parent at clone.
struct init_request {
    const spec::config* cfg = nullptr;
    std::string id;
    std::string bundle;
    borrowed_fd exec_fifo = -1;      ///< the exec fifo, open read-write: the init reads from it until `start` writes
    borrowed_fd console_socket = -1; ///< connected --console-socket, or -1
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
    const linux_::seccomp_program* seccomp = nullptr;  ///< compiled linux.seccomp, or null
};

/// Callbacks into the caller at the points where the runtime (not the container) acts.
struct spawn_hooks {
    /// The state JSON to give hooks, once the init's pid is known.
    std::function<std::string(pid_t)> state_json;
    /// Puts the init in its cgroup, limits in place first; called while the init sets up.
    std::function<void(pid_t)> join_cgroup;
};

/// Clones the init into its namespaces, has join_cgroup place it, lets it set up the container and
/// runs the runtime-side hooks, returning once the init is parked on the exec fifo. The init is a
/// child of the caller. On failure the init is killed and reaped, and the child's error rethrown.
pid_t spawn_init(const init_request& req, const spawn_hooks& hooks);

}  // namespace pieces::proc
