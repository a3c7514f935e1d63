// Garbage collection of the store: what no name and no container uses.
#pragma once

#include <cstdint>
#include <vector>

#include "core/image/digest.h"
#include "core/image/store.h"

namespace pieces::image {

/// What prune removed.
struct prune_result {
    int blobs = 0, layers = 0, cache_entries = 0;
    uint64_t bytes = 0;  ///< blob bytes freed
};

/// Removes the build cache, then every blob and unpacked layer that neither a name in the
/// index nor one of `in_use` (manifests of containers' images) reaches. The store must be
/// locked exclusively.
prune_result prune(store& s, const std::vector<digest>& in_use);

}  // namespace pieces::image
