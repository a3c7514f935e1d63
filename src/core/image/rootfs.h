// An image's layers as a container's root filesystem: each layer unpacked once (keyed by its
// ChainID) and stacked as overlayfs lower layers under a fresh upper directory.
#pragma once

#include <string>

#include "core/image/image.h"
#include "core/image/store.h"

namespace pieces::image {

/// Unpacks every layer of `img` not yet in the store (needs the store locked exclusively).
void ensure_unpacked(store& s, const image& img);

/// What the upper layer of a mounted image is for.
enum class upper_kind {
    kept,       ///< written to durably (a container that stays, a build step's new layer)
    throwaway,  ///< removed at exit (run --rm): overlayfs "volatile", no syncs, no flush at unmount
    none,       ///< no upper layer: read-only
};

/// Mounts `img` at dir/rootfs: overlayfs with the image's layers as lower layers and dir/upper,
/// dir/work (made when missing) as upper and work directories, unless `upper` is none.
/// Returns the rootfs path.
std::string mount_image(const store& s, const image& img, const std::string& dir, upper_kind upper = upper_kind::kept);

/// Unmounts dir/rootfs when mounted (detached: nothing may hold it busy).
void unmount_image(const std::string& dir);

}  // namespace pieces::image
