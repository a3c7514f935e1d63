// A container as `pieces inspect` shows it, in Docker's field names: the Config, HostConfig and
// Mounts recorded when it was made, and its State as it is now.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/image/containers.h"

namespace pieces::image {

/// Docker's Config of a container made from an image whose config is `runtime` with `r`, given
/// the OCI `bundle` config made for it (its env), its labels and stop signal.
nlohmann::json docker_config(const nlohmann::json& runtime, const run_request& r, const nlohmann::json& bundle,
                             const std::map<std::string, std::string>& labels, int stop_signal);

/// Docker's HostConfig for what `r` asks: limits, capabilities, binds, tmpfs, network.
nlohmann::json docker_host_config(const run_request& r);

/// Docker's Mounts: the -v binds and the image volumes (destination, directory holding it).
nlohmann::json docker_mounts(const run_request& r, const std::vector<std::pair<std::string, std::string>>& image_volumes);

/// The inspect document of a container from its record and what is known of it now; `started`
/// is when it started, where known (else left out, as is FinishedAt before it ended).
nlohmann::json inspect_document(const nlohmann::json& record, const container_info& c, const std::string& started);

}  // namespace pieces::image
