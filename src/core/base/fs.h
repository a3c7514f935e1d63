// File-system helpers: whole-file I/O and paths resolved safely inside a root.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>
#include <functional>
#include <optional>
#include <utility>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/base/unique_fd.h"

namespace pieces {

/// Wraps a path in double quotes for messages.
std::string quote(std::string_view path);

/// Reads a whole file.
std::string read_file(const std::string& path);
/// Reads everything left in `fd`.
std::string read_all(borrowed_fd fd);
/// Writes all of `data` to `fd`, retrying short writes.
void write_all(borrowed_fd fd, std::string_view data, std::string_view what);
/// Opens `path` with `flags` (O_CLOEXEC added) and writes `data`.
void write_file(const std::string& path, std::string_view data, int flags = 0, mode_t mode = 0644);
/// Writes `data` to a file and renames it over `path`, so readers see old or new, never half.
void write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

/// Opens a path (O_CLOEXEC added); throws with the path on failure.
unique_fd open_path(const std::string& path, int flags, mode_t mode = 0);

/// Opens `path` as if `root` were "/": ".." and symlinks never leave it, magic links refused.
/// Uses openat2(RESOLVE_IN_ROOT), or a component-by-component walk where openat2 is missing.
unique_fd open_in_root(borrowed_fd root, std::string_view path, int flags, mode_t mode = 0);
/// Like open_in_root, returning -errno instead of throwing.
int try_open_in_root(borrowed_fd root, std::string_view path, int flags, mode_t mode = 0);

/// Makes open_in_root use its own component walk, as where openat2 is missing or blocked by a
/// seccomp filter; for tests of that path.
void use_openat2(bool enabled);

/// Makes every missing directory of `path` inside `root`; returns an O_PATH fd to the last.
unique_fd mkdir_all_in_root(borrowed_fd root, std::string_view path, mode_t mode = 0755);
/// Makes the parents of `path` and an empty regular file there when missing; returns O_PATH fd.
unique_fd make_file_in_root(borrowed_fd root, std::string_view path, mode_t mode = 0644);

/// Splits "a//b/./c/" into components, dropping empty and "." parts.
std::vector<std::string> split_components(std::string_view path);
/// The path without its last component, and that last component.
std::string parent_of(std::string_view path);
std::string base_of(std::string_view path);

/// The "/proc/self/fd/N" path naming an open descriptor.
std::string fd_path(borrowed_fd fd);

/// Closes every descriptor except those in `keep` (which need not be sorted).
void close_fds_except(std::vector<int> keep);

/// How copy_tree copies.
struct copy_options {
    /// Owner for everything copied; unset keeps each entry's own.
    std::optional<std::pair<uid_t, gid_t>> owner;
    /// Entries (paths relative to the top, "a/b") to leave out, with what is below them.
    std::function<bool(const std::string& relative)> skip;
};

/// Copies one entry `name` of directory `from` to `to_name` in directory `to`: a regular file
/// (contents), a symlink (its text), a device, fifo or an empty directory; keeps mode and
/// mtime, and the owner unless `opts.owner` says otherwise. Follows no symlink; an existing
/// non-directory at the target is replaced. Returns the source's stat.
struct stat copy_entry(borrowed_fd from, const std::string& name, borrowed_fd to, const std::string& to_name,
                       const copy_options& opts = {});

/// Copies the tree under directory `from` into directory `to` (merging with what is there),
/// entry by entry as copy_entry does; `where` names `from` in errors.
void copy_tree(borrowed_fd from, borrowed_fd to, const std::string& where, const copy_options& opts = {},
               const std::string& relative = "");

/// Removes a directory tree; missing is not an error.
void remove_all(const std::string& path);

}  // namespace pieces
