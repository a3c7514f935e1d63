// The runtime-spec features document: what this runtime and this machine can do.
#pragma once

#include <nlohmann/json.hpp>

namespace pieces::container {

/// The features document `puncker features` prints. It claims only what works here: clients
/// (containerd's CRI) decide from it, for instance, whether user namespaces can be offered.
nlohmann::json features();

}  // namespace pieces::container
