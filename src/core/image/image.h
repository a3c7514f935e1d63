// Images in the store: an OCI manifest, its config and its layers, and the ChainIDs that key
// unpacked layers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/image/digest.h"
#include "core/image/store.h"

namespace pieces::image {

inline constexpr const char* media_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* media_config = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* media_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* media_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* media_layer_tar = "application/vnd.oci.image.layer.v1.tar";

/// One layer of an image: the blob in the store and the digest of its uncompressed tar.
struct layer {
    digest blob;
    std::string media_type = media_layer_gzip;
    int64_t size = 0;
    digest diff_id;
};

/// An image as the store holds it.
struct image {
    digest manifest_digest;
    nlohmann::json manifest;
    digest config_digest;
    nlohmann::json config;  ///< the OCI image config document (architecture, os, config, rootfs, history)
    std::vector<layer> layers;

    /// The runtime settings ("config" member of the config document), an object even when absent.
    nlohmann::json runtime() const { return config.value("config", nlohmann::json::object()); }
    /// ChainID of the first `n` layers (all when n is -1): the key of their unpacked form.
    digest chain_id(long n = -1) const;
    /// Sum of the layer blob sizes.
    int64_t size() const;
};

/// ChainID per the image-spec: ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
digest chain_id(const std::vector<digest>& diff_ids);

/// Reads an image from the store by its manifest digest.
image load(const store& s, const digest& manifest);

/// A config document for a new image with no layers (architecture and os of this machine).
nlohmann::json empty_config();

/// Writes `config` (its rootfs.diff_ids set from `layers`) and a manifest for it; returns the image.
/// The layer blobs must be in the store already.
image commit(store& s, nlohmann::json config, const std::vector<layer>& layers);

/// The strings of a JSON array (other members and non-arrays give nothing): Env, Cmd, ...
std::vector<std::string> string_list(const nlohmann::json& j);

/// A byte count for people: "1.2 MB", "512 B" (powers of 1000, as Docker shows sizes).
std::string human_size(uint64_t bytes);

/// The time now as RFC 3339 UTC ("2026-11-23T18:04:38Z"), for "created" fields.
std::string now_rfc3339();

/// This machine's architecture in OCI terms (amd64, arm64, ...).
std::string oci_architecture();

}  // namespace pieces::image
