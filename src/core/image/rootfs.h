// An image's layers as a container's root filesystem: each layer unpacked once (keyed by its
// ChainID) and stacked as overlayfs lower layers under a fresh upper directory.
#pragma once

#include <string>

#include "core/image/image.h"
#include "core/image/store.h"

namespace pieces::image {

/// Unpacks every layer of `img` not yet in the store (needs the store locked exclusively).
void ensure_unpacked(store& s, const image& img);

/// Mounts `img` at dir/rootfs: overlayfs with the image's layers as lower layers and dir/upper,
/// dir/work (made when missing) as upper and work directories. `read_only` mounts no upper.
/// Returns the rootfs path.
std::string mount_image(const store& s, const image& img, const std::string& dir, bool read_only = false);

/// Unmounts dir/rootfs when mounted (detached: nothing may hold it busy).
void unmount_image(const std::string& dir);

}  // namespace pieces::image
