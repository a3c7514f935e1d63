// The container side of creation: what the cloned process does, step by step, until execve.
#pragma once

#include <string>

#include "core/proc/channel.h"
#include "core/proc/spawn.h"

namespace pieces::proc {

/// Runs in the init after the parent said "go": mounts, devices, hooks, pivot, identity, then
/// parks on the exec fifo and execs the user's program. Throws on failure; never returns otherwise.
[[noreturn]] void container_init(const init_request& req, channel& chan, const std::string& state_json);

}  // namespace pieces::proc
