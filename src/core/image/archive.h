// Image archives: `pieces save` writes images from the store as one tar (an OCI image layout,
// or what `docker load` reads), `pieces load` reads either kind back into the store.
//
// Loading is all or nothing: every file of the archive is first copied to a staging directory
// under the store's tmp/ (blobs/sha256/ entries checked against their names as they stream
// past), the images are then checked for missing or mismatched blobs, and only after that are
// the blobs moved in (store::adopt_blob) and the names tagged. A failure removes the staging
// directory and whatever this load had already added.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "core/image/digest.h"
#include "core/image/store.h"

namespace pieces::image {

/// The two archive layouts.
enum class archive_format {
    oci,     ///< a tar of an OCI image layout: oci-layout, index.json (ref.name annotations), blobs/sha256/
    docker,  ///< `docker save`'s layout: manifest.json, repositories, <config>.json, <layer>/layer.tar
};

/// Parses "oci-archive" / "oci" or "docker-archive" / "docker"; throws naming the text otherwise.
archive_format parse_archive_format(std::string_view text);

/// One image to save: its manifest, and the name it goes under (none when saved by id).
struct saved_image {
    digest manifest;
    std::optional<std::string> name;  ///< normalised "name:tag"
};

/// Writes `images` from `s` as one archive to `out` (a file or a pipe: written front to back).
/// Docker archives get uncompressed layer tars, as `docker load` wants them.
void save_archive(const store& s, const std::vector<saved_image>& images, archive_format format, borrowed_fd out);

/// What a load brought in: each image's manifest and the names it was tagged with.
struct loaded_image {
    digest manifest;
    std::vector<std::string> names;
};

/// Reads an OCI or docker archive (tar, optionally gzip/zstd/xz-compressed) from `in`, verifies
/// every blob, converts docker images to OCI manifests, moves the blobs into `s` and tags the
/// names the archive carries (docker.io/library/ dropped, ":latest" added). Throws one line on
/// any failure (not a tar, truncated, no manifest, digest mismatch, missing blob), leaving `s`
/// as it was. `s` may be locked shared: the archive is read under that lock (beside a `save` of
/// the same store writing it), and the lock becomes exclusive before anything is committed.
std::vector<loaded_image> load_archive(store& s, borrowed_fd in);

/// "docker.io/library/busybox:1" -> "busybox:1", "index.docker.io/x/y" -> "x/y:latest": the
/// short form Docker shows, normalised as the store names images.
std::string familiar_name(std::string_view reference);

}  // namespace pieces::image
