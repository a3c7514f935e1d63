// Resource usage read from a container's cgroups, in the shape runc's `events` prints.
#pragma once

#include <nlohmann/json.hpp>

#include "core/cgroup/cgroup.h"

namespace pieces::cgroup {

/// cpu, memory, pids, blkio and hugetlb statistics (v1 hierarchies) as runc's events "data".
nlohmann::json stats(const group& g);

}  // namespace pieces::cgroup
