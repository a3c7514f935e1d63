// The local image store: an OCI image layout (oci-layout, index.json, blobs/sha256/) that
// skopeo, umoci and podman can read, plus what pieces keeps beside it: unpacked layers by
// ChainID, the build cache, and containers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/unique_fd.h"
#include "core/image/digest.h"

namespace pieces::image {

/// The name annotation OCI layouts use for a tag ("name:tag" here).
inline constexpr const char* ref_name_annotation = "org.opencontainers.image.ref.name";

/// "ubuntu" -> "ubuntu:latest"; "ubuntu:22.04" stays; "host:5000/x" -> "host:5000/x:latest".
std::string normalize_name(std::string_view name);
/// Throws unless `name` is a usable image name[:tag] (lower-case letters, digits, . _ - / and a port).
void validate_name(std::string_view name);

class store {
public:
    /// Opens the store at `root`, making its layout when missing, and locks it (flock on
    /// root/lock) for as long as the object lives: shared for readers, exclusive for writers.
    static store open(const std::string& root, bool exclusive);

    const std::string& root() const { return root_; }
    /// Turns a shared lock into an exclusive one (waiting for other readers to finish): for
    /// commands that read a while before they write, such as load reading from a pipe that a
    /// `save` of the same store writes.
    void lock_exclusive();
    std::string blob_path(const digest& d) const { return root_ + "/blobs/sha256/" + d.hex(); }
    bool has_blob(const digest& d) const;
    /// A blob's bytes (manifests and configs: small).
    std::string read_blob(const digest& d) const;
    /// Stores `data` as a blob; returns its digest.
    digest put_blob(std::string_view data);
    /// A fresh file under root/tmp for writing a blob or a directory into; removed by `adopt_blob`
    /// or by the caller on failure.
    std::string temp_path(std::string_view purpose) const;
    /// Moves a finished temporary file in as the blob `d`, after checking its digest.
    void adopt_blob(const std::string& temp, const digest& d);

    /// The manifest a name ("name:tag", normalised) or an image id (a manifest digest, or a
    /// prefix of its hex of at least 6 digits) stands for.
    std::optional<digest> resolve(std::string_view name_or_id) const;
    /// Points `name` (normalised) at `manifest`, replacing what it named before.
    void tag(std::string_view name, const digest& manifest, std::string_view media_type, int64_t size);
    /// Removes a name; false when there was none.
    bool untag(std::string_view name);
    /// Every (name, manifest) in index.json.
    std::vector<std::pair<std::string, digest>> names() const;
    /// index.json's manifest descriptors as stored (for tools and save).
    nlohmann::json index() const;

    /// Where the unpacked layer with this ChainID lives (root/layers/<hex>), and whether it is complete.
    std::string layer_dir(const digest& chain_id) const { return root_ + "/layers/" + chain_id.hex(); }
    bool has_layer(const digest& chain_id) const;
    /// Moves a finished temporary directory in as the layer `chain_id` (its content is the layer's
    /// files, overlay whiteouts included).
    void adopt_layer(const std::string& temp_dir, const digest& chain_id);

    /// The build cache: step key -> the image (manifest) that step produced.
    std::optional<digest> cached(const digest& key) const;
    void remember(const digest& key, const digest& manifest);

private:
    store(std::string root, unique_fd lock) : root_(std::move(root)), lock_(std::move(lock)) {}
    void write_index(const nlohmann::json& index);
    std::string root_;
    unique_fd lock_;
};

/// The store's root: $PIECES_ROOT, else /var/lib/pieces for root and ~/.local/share/pieces otherwise.
std::string default_store_root();

}  // namespace pieces::image
