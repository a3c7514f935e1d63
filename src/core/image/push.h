// Pushing an image from the local store to a registry: each blob the registry lacks is mounted
// from another repository of the same registry when the store knows one that has it, else
// uploaded; then the manifest, byte for byte as stored, so the image keeps its digest.
// Nothing in the store changes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/image/digest.h"
#include "core/image/reference.h"
#include "core/image/store.h"

namespace pieces::image {

struct push_options {
    std::function<void(const std::string& line)> say;  ///< one line per blob ("<12 hex>: pushed 2.3 MB")
    /// Live byte counts per blob (`id` as in `say`'s lines); called from upload threads.
    std::function<void(const std::string& id, uint64_t done, uint64_t total)> progress;
    unsigned jobs = 3;  ///< blobs uploaded at once
};

struct push_result {
    reference destination;  ///< where the image went
    digest manifest;        ///< the manifest's digest: the image id, and the registry's digest of it
    unsigned uploaded = 0, mounted = 0, present = 0;  ///< blobs, by how they got there
};

/// Where `pieces push IMAGE [DEST]` pushes to: DEST when given, else IMAGE itself, which must
/// then name a registry ("host:5000/name:tag"). A digest is refused: the image's own digest is
/// what the manifest gets.
reference push_destination(const std::string& image, const std::string& dest);

/// Pushes `image` (a name or id in `s`) to `dest` (see push_destination).
push_result push(const store& s, const std::string& image, const std::string& dest, const push_options& opts = {});

}  // namespace pieces::image
