// The container side of creation: what the cloned process does, step by step, until execve.
#pragma once

#include <string>

#include "core/proc/channel.h"
#include "core/proc/spawn.h"

namespace pieces::proc {

/// The steps every container process takes last, in the init and in `exec` alike: rlimits,
/// seccomp (before or after the capability drop, by no_new_privs), uid/gid and capabilities,
/// umask, cwd (checked to be inside the root), finding the program, and marking every
/// descriptor past stdio and the preserved ones close-on-exec. Returns the program's path.
std::string prepare_process(const spec::process& p, const linux_::seccomp_program* seccomp, channel& chan,
                            int preserve_fds);

/// Runs in the init after the parent said "go": mounts, devices, hooks, pivot, identity, then
/// parks on the exec fifo and execs the user's program. Throws on failure; never returns otherwise.
[[noreturn]] void container_init(const init_request& req, channel& chan, const std::string& state_json);

}  // namespace pieces::proc
