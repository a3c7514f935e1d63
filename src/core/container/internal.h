// Pieces shared by the lifecycle verbs; not for the CLIs.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/unique_fd.h"
#include "core/container/lifecycle.h"
#include "core/container/state_store.h"
#include "core/spec/config.h"

namespace pieces::container {

/// A container just created, with its state directory still locked.
struct created_container {
    pid_t pid;
    state_dir dir;
    bool terminal = false;  ///< process.terminal: the pty master went to the console socket
};

/// create, keeping the lock so `run` can go straight on to start.
created_container create_container(const create_options& opts);

/// Releases the init of a created container (under the held lock) and runs poststart hooks.
void start_locked(state_dir& dir, const saved_state& s);

/// The state document hooks receive on stdin.
nlohmann::json hook_state(const std::string& id, const char* status, pid_t pid, const std::string& bundle,
                          const std::map<std::string, std::string>& annotations);

/// The signals a foreground `run` or `exec` passes on (plus SIGCHLD), to block before forking.
sigset_t forwarded_signal_set();
/// Forwards signals read from `sigfd` to `pid` and reaps children until `pid` exits; returns
/// its exit status (128+N when killed by signal N).
int wait_and_forward(pid_t pid, borrowed_fd sigfd);

/// Relays a container's pty (`master`) to our stdio until the container is gone, forwarding
/// signals and window size changes; returns the init's exit status.
int relay_terminal(pid_t init, borrowed_fd master, borrowed_fd sigfd);

/// Deletes a stopped container under the held lock: poststop hooks, cgroup, state directory.
void remove_locked(state_dir& dir, const saved_state& s);

}  // namespace pieces::container
