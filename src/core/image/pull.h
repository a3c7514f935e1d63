// Pulling an image from a registry into the local store: the manifest (chosen from an index for
// the wanted platform), its config and layers (downloaded in parallel, each checked against its
// digest while streaming), the layers unpacked, and the image named by its reference.
// A failure leaves the store as it was: nothing named, no blob or layer added.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/image/digest.h"
#include "core/image/registry.h"
#include "core/image/store.h"

namespace pieces::image {

struct pull_options {
    std::optional<platform> want;                        ///< default: this machine (platform::host())
    std::function<void(const std::string& line)> say;   ///< one line per step and per layer
    /// Live byte counts per layer (`id`: the first 12 hex digits of its digest, as in `say`'s
    /// lines); called from download threads.
    std::function<void(const std::string& id, uint64_t done, uint64_t total)> progress;
    unsigned jobs = 3;  ///< layers downloaded at once
};

struct pull_result {
    std::string name;         ///< the name in the store ("alpine:3.18", "127.0.0.1:5000/bb:1"); empty for a digest-only pull
    digest manifest;          ///< the stored (OCI) manifest: the image id
    digest registry_digest;   ///< the digest the registry knows the pulled reference by (index or manifest)
    unsigned layers_fetched = 0;
    unsigned layers_present = 0;
};

/// Pulls `ref_text` (any reference form reference::parse takes) into `s` (opened exclusively).
pull_result pull(store& s, const std::string& ref_text, const pull_options& opts = {});

/// Rewrites a Docker schema2 manifest with OCI media types (the manifest, config and layer types);
/// an OCI manifest comes back unchanged. Throws on layer types pieces cannot unpack.
nlohmann::json oci_manifest_of(const nlohmann::json& manifest);

}  // namespace pieces::image
