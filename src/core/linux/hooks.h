// Running OCI hooks: the state JSON on stdin, a timeout, a clear error when one fails.
#pragma once

#include <string>
#include <vector>

#include "core/spec/config.h"

namespace pieces::linux_ {

/// Runs each hook in order with `state_json` on its stdin; throws on the first that fails,
/// times out, or cannot be started. `stage` names the hook list in messages ("createRuntime").
void run_hooks(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage);

/// Runs hooks like run_hooks, but logs a warning for a failure and goes on (poststart, poststop).
void run_hooks_warn(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage);

}  // namespace pieces::linux_
