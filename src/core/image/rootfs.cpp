#include "core/image/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"
#include "core/image/layer.h"

namespace pieces::image {
namespace {

void make_dir(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) throw_errno("mkdir", quote(path));
}

bool is_mounted(const std::string& path) {
    for (const auto& m : procfs::mountinfo())
        if (m.mount_point == path) return true;
    return false;
}

}  // namespace

void ensure_unpacked(store& s, const image& img) {
    std::vector<digest> diff_ids;
    for (const auto& l : img.layers) {
        diff_ids.push_back(l.diff_id);
        digest chain = chain_id(diff_ids);
        if (s.has_layer(chain)) continue;
        with_context("unpack layer " + l.blob.str().substr(7, 12), [&] {
            std::string tmp = s.temp_path("layer");
            make_dir(tmp, 0755);
            try {
                unique_fd blob = open_path(s.blob_path(l.blob), O_RDONLY);
                unique_fd dir = open_path(tmp, O_RDONLY | O_DIRECTORY);
                layer_digests got = unpack_layer(blob, dir, {.allow_devices = true});
                if (got.diff_id != l.diff_id)
                    throw error("diff_id mismatch: the config says " + l.diff_id.str() + ", the blob gives " + got.diff_id.str());
                s.adopt_layer(tmp, chain);
            } catch (...) {
                remove_all(tmp);
                throw;
            }
        });
    }
}

std::string mount_image(const store& s, const image& img, const std::string& dir, upper_kind upper) {
    bool read_only = upper == upper_kind::none;
    std::string rootfs = dir + "/rootfs";
    make_dir(rootfs, 0755);
    if (is_mounted(rootfs)) return rootfs;
    // Lower layers are listed top first.
    std::string lower;
    for (size_t n = img.layers.size(); n > 0; --n) {
        std::string layer = s.layer_dir(img.chain_id(static_cast<long>(n)));
        if (::access(layer.c_str(), F_OK) != 0) throw error("layer " + quote(layer) + " is not unpacked");
        lower += (lower.empty() ? "" : ":") + layer;
    }
    if (lower.empty()) {
        // An image without layers: an empty lower layer of its own.
        lower = dir + "/empty";
        make_dir(lower, 0755);
    }
    std::string options = "lowerdir=" + lower;
    if (!read_only) {
        make_dir(dir + "/upper", 0755);
        make_dir(dir + "/work", 0700);
        options += ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
        // The upper directory may become a layer: keep it in the plain form layers have (no
        // directory redirects, no metadata-only copies, no index tying it to these lowers).
        options += ",redirect_dir=off,metacopy=off,index=off";
        // Nothing of a throwaway upper must survive a crash: skip the syncs (and the journal
        // flush at unmount, which was a good part of `run --rm`'s tear-down).
        if (upper == upper_kind::throwaway) options += ",volatile";
    } else if (img.layers.size() < 2) {
        // overlayfs wants two lower layers when there is no upper one.
        make_dir(dir + "/empty", 0755);
        options += ":" + dir + "/empty";
    }
    if (options.size() >= 4096) throw error("too many layers for one overlay mount (" + std::to_string(img.layers.size()) + ")");
    if (::mount("overlay", rootfs.c_str(), "overlay", read_only ? MS_RDONLY : 0, options.c_str()) < 0)
        throw_errno("mount overlay", quote(rootfs));
    return rootfs;
}

void unmount_image(const std::string& dir) {
    std::string rootfs = dir + "/rootfs";
    // EINVAL: no longer a mount point; a detached container's monitor unmounts it when the
    // container ends, and `rm -f` may have killed it a moment before.
    if (is_mounted(rootfs) && ::umount2(rootfs.c_str(), MNT_DETACH) < 0 && errno != EINVAL) throw_errno("unmount", quote(rootfs));
}

}  // namespace pieces::image
