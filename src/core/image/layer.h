// Image layers: unpacking a layer tarball into a directory that becomes an overlayfs lower
// layer, and packing an overlayfs upper directory back into a layer tarball.
//
// Unpacking is safe against hostile tarballs: every entry is created below an fd of the layer
// directory, parents resolved as if that directory were "/" (openat2 RESOLVE_IN_ROOT), the last
// component never followed, so nothing outside the directory is ever created, changed or linked.
// A failure throws one line naming the entry ("layer entry \"etc/passwd\": ...") and leaves the
// half-unpacked directory behind: the caller removes it (the store unpacks into a temporary
// directory and renames it into place only on success).
#pragma once

#include <cstdint>

#include "core/base/unique_fd.h"
#include "core/image/digest.h"

namespace pieces::image {

/// What reading or writing a layer measured, in one pass over the bytes.
struct layer_digests {
    digest diff_id;      ///< sha256 of the uncompressed tar stream (OCI "DiffID")
    digest blob;         ///< sha256 of the bytes as stored/read (compressed or not)
    uint64_t blob_size;  ///< bytes of the blob
};

/// Choices for unpack_layer.
struct unpack_options {
    bool allow_devices = false;  ///< create char/block device nodes (else: skip them, as rootless would)
};

/// Unpacks the layer read from `blob` (from its current offset to the end; a pipe works) into
/// the directory `dir` (an O_PATH or O_DIRECTORY fd of an empty directory).
/// The tar may be gzip, zstd, xz or uncompressed (detected from the bytes).
/// - Absolute names and ".." are clamped to `dir`; parents resolve inside `dir`; an existing
///   last component is replaced (a symlink there is never followed); hardlink targets resolve
///   inside `dir` and a hardlink to a symlink links the symlink.
/// - OCI whiteouts become overlayfs ones: ".wh.NAME" -> char device 0:0 "NAME" (replacing what
///   this layer made there), ".wh..wh..opq" -> xattr trusted.overlay.opaque="y" on its directory.
/// - Owners, modes (setuid too), mtimes (seconds and nanoseconds), xattrs and symlinks are kept;
///   trusted.overlay.* xattrs in the tar are dropped (only whiteouts may make overlay metadata).
///   Devices other than 0:0 are skipped unless `allow_devices`; sockets are skipped.
/// Returns the digests of what was read (the caller compares them with the manifest's).
layer_digests unpack_layer(borrowed_fd blob, borrowed_fd dir, const unpack_options& = {});

/// Writes the directory `upper` (an overlayfs upper dir after a build step) as a gzip layer tar
/// to `out`. Deterministic: the same tree gives the same bytes (entries sorted by name in each
/// directory, numeric owners only, mtimes in whole seconds, a gzip header without time or name).
/// uid/gid/mode/mtime/xattrs (except trusted.overlay.*) are kept, hardlinks within the tree become
/// tar hardlinks, overlay whiteouts (char 0:0) become ".wh.NAME" and opaque directories
/// (trusted.overlay.opaque=y) get a "DIR/.wh..wh..opq" entry right after the directory.
/// Refuses redirected directories and metacopy files (their data lives in a lower layer).
/// Returns the digests (diff_id of the tar, blob of the gzip bytes written).
layer_digests pack_layer(borrowed_fd upper, borrowed_fd out);

/// DiffID of a blob read from `blob`'s current offset to the end: sha256 of its decompressed bytes.
digest diff_id_of(borrowed_fd blob);

}  // namespace pieces::image
