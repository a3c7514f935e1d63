// The last steps before execve: rlimits, identity, umask, and finding the program.
#pragma once

#include <string>
#include <vector>

#include "core/spec/config.h"

namespace pieces::linux_ {

/// Applies process.rlimits.
void set_rlimits(const std::vector<spec::rlimit>& rlimits);

/// Sets supplementary groups, gid and uid; `setgroups_allowed` is false in a user namespace
/// whose setgroups is denied.
void switch_user(const spec::user& u, bool setgroups_allowed);

/// Finds the program to run: args[0] as a path, or searched in PATH from the process env.
/// Throws "exec: "x": executable file not found in $PATH" like the clients expect.
std::string find_executable(const std::string& arg0, const std::vector<std::string>& env);

/// Writes process.oomScoreAdj for `pid` ("self" for the caller).
void set_oom_score_adj(const std::string& pid, int adj);

}  // namespace pieces::linux_
