#include "core/image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/error.h"
#include "core/image/libarchive.h"
#include "core/base/fs.h"

namespace pieces::image {
namespace {

constexpr size_t io_chunk = 1 << 20;
constexpr std::string_view whiteout_prefix = ".wh.";
constexpr std::string_view opaque_marker = ".wh..wh..opq";
constexpr std::string_view overlay_xattr_prefix = "trusted.overlay.";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }



read_archive new_reader() {
    read_archive a(archive_read_new());
    if (!a) throw error("libarchive: cannot allocate a reader");
    return a;
}

write_archive new_writer() {
    write_archive a(archive_write_new());
    if (!a) throw error("libarchive: cannot allocate a writer");
    return a;
}

void check_archive(archive* a, int r, std::string_view what) {
    if (r < ARCHIVE_WARN) throw error(std::string(what) + ": " + archive_message(a), archive_errno(a));
}

// "/proc/self/fd/D/NAME": a path for the calls that have no *at form (the l*xattr family),
// resolving D through procfs and never following NAME.
std::string at_path(borrowed_fd dir, std::string_view name) { return fd_path(dir) + "/" + std::string(name); }

// ---- Reading: fd -> (blob sha256) -> decompressor -> (tar sha256) -> tar reader ----------------

// The compressed side: reads the fd, hashing every byte on the way in.
struct blob_source {
    int fd;
    sha256 hash;
    uint64_t size = 0;
    std::vector<char> buf = std::vector<char>(io_chunk);
};

la_ssize_t read_blob(archive* a, void* client, const void** out) {
    auto* s = static_cast<blob_source*>(client);
    for (;;) {
        ssize_t n = ::read(s->fd, s->buf.data(), s->buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            archive_set_error(a, errno, "read layer blob: %s", std::strerror(errno));
            return -1;
        }
        try {
            s->hash.update(s->buf.data(), static_cast<size_t>(n));
        } catch (const std::exception& e) {  // never across libarchive's C frames
            archive_set_error(a, EIO, "%s", e.what());
            return -1;
        }
        s->size += static_cast<uint64_t>(n);
        *out = s->buf.data();
        return n;
    }
}

// A layer blob opened for reading: one decompressing pass whose output is hashed (the DiffID)
// and handed, without copying, to a second libarchive reader that parses the tar.
class layer_stream {
public:
    explicit layer_stream(int fd) {
        src_.fd = fd;
        raw_ = new_reader();
        // Only the formats an image layer may use; no filter that would run an external program.
        archive_read_support_filter_gzip(raw_.get());
        archive_read_support_filter_zstd(raw_.get());
        archive_read_support_filter_xz(raw_.get());
        archive_read_support_format_raw(raw_.get());
        check_archive(raw_.get(), archive_read_open(raw_.get(), &src_, nullptr, read_blob, nullptr),
                      "open layer blob");
        archive_entry* e = nullptr;
        int r = archive_read_next_header(raw_.get(), &e);
        if (r == ARCHIVE_EOF) raw_eof_ = true;
        else check_archive(raw_.get(), r, "read layer blob");
    }

    /// Opens the tar parser over the decompressed bytes.
    archive* open_tar() {
        tar_ = new_reader();
        archive_read_support_format_tar(tar_.get());
        check_archive(tar_.get(), archive_read_open(tar_.get(), this, nullptr, read_tar, nullptr), "read layer tar");
        return tar_.get();
    }

    /// Reads what the tar parser left (end-of-archive padding) and what the decompressor left
    /// (bytes after the compressed stream), so both digests cover everything.
    layer_digests finish() {
        const void* p = nullptr;
        while (pull(&p) > 0) {
        }
        if (!pull_error_.empty()) throw error(pull_error_);
        for (;;) {
            ssize_t n = ::read(src_.fd, src_.buf.data(), src_.buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read layer blob");
            if (n == 0) break;
            src_.hash.update(src_.buf.data(), static_cast<size_t>(n));
            src_.size += static_cast<uint64_t>(n);
        }
        return {diff_.finish(), src_.hash.finish(), src_.size};
    }

private:
    // The next decompressed block: its size, 0 at the end, -1 on error (pull_error_ says which).
    la_ssize_t pull(const void** out) {
        while (!raw_eof_) {
            size_t size = 0;
            la_int64_t offset = 0;
            int r = archive_read_data_block(raw_.get(), out, &size, &offset);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) {
                pull_error_ = "decompress layer: " + archive_message(raw_.get());
                return -1;
            }
            if (size == 0) continue;
            try {
                diff_.update(*out, size);
            } catch (const std::exception& e) {
                pull_error_ = e.what();
                return -1;
            }
            return static_cast<la_ssize_t>(size);
        }
        raw_eof_ = true;
        return 0;
    }

    static la_ssize_t read_tar(archive* a, void* client, const void** out) {
        auto* self = static_cast<layer_stream*>(client);
        la_ssize_t n = self->pull(out);
        if (n < 0) archive_set_error(a, EIO, "%s", self->pull_error_.c_str());
        return n;
    }

    blob_source src_;
    sha256 diff_;
    read_archive raw_, tar_;
    bool raw_eof_ = false;
    std::string pull_error_;
};

// ---- Unpacking -------------------------------------------------------------------------------

// An entry name cleaned without touching the disk: "." dropped, ".." clamped at the root, so
// the name can never climb out before any symlink is even looked at.
std::vector<std::string> clean_components(std::string_view name) {
    std::vector<std::string> out;
    for (auto& c : split_components(name)) {
        if (c == "..") {
            if (!out.empty()) out.pop_back();
        } else {
            out.push_back(std::move(c));
        }
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, size_t count) {
    std::string out;
    for (size_t i = 0; i < count; ++i) {
        if (i) out += '/';
        out += parts[i];
    }
    return out;
}

// libarchive gives the locale form of a name; where that conversion fails, the UTF-8 form.
std::string entry_text(const char* mbs, const char* utf8) { return mbs ? mbs : utf8 ? utf8 : ""; }

void pwrite_all(int fd, const void* data, size_t size, off_t offset) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("write");
        p += n;
        size -= static_cast<size_t>(n);
        offset += n;
    }
}

// Removes `name` below `parent`, a whole tree if it is a directory; never follows a symlink.
void remove_at(int parent, const std::string& name) {
    if (::unlinkat(parent, name.c_str(), 0) == 0) return;
    if (errno != EISDIR && errno != EPERM) throw_errno("unlink", quote(name));
    unique_fd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) throw_errno("open", quote(name));
    DIR* d = ::fdopendir(::dup(dir.get()));
    if (!d) throw_errno("opendir", quote(name));
    std::vector<std::string> children;
    while (dirent* de = ::readdir(d)) {
        std::string_view n = de->d_name;
        if (n != "." && n != "..") children.emplace_back(n);
    }
    ::closedir(d);
    for (const auto& c : children) remove_at(dir.get(), c);
    if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) < 0) throw_errno("rmdir", quote(name));
}

class unpacker {
public:
    unpacker(borrowed_fd root, const unpack_options& opts) : root_(root), opts_(opts) {}

    void extract(archive* a, archive_entry* e, std::string_view name) {
        std::vector<std::string> parts = clean_components(name);
        mode_t type = archive_entry_filetype(e);
        bool hardlink = archive_entry_hardlink(e) || archive_entry_hardlink_utf8(e);
        if (parts.empty()) {
            if (hardlink || type != AE_IFDIR) throw error("only a directory can name the layer root");
            unique_fd self(::openat(root_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!self) throw_errno("open layer root");
            set_dir_metadata(e, self, "");
            return;
        }
        std::string base = parts.back();
        for (size_t i = 0; i + 1 < parts.size(); ++i)
            if (starts_with(parts[i], whiteout_prefix)) throw error("a whiteout name cannot be a directory");
        std::string parent_path = join(parts, parts.size() - 1);
        unique_fd parent = mkdir_all_in_root(root_, parent_path);

        int p = parent.get();
        if (starts_with(base, whiteout_prefix)) return whiteout(p, base);
        if (hardlink) return make_hardlink(e, p, base);
        switch (type) {
        case AE_IFREG: return make_file(a, e, p, base);
        case AE_IFDIR: return make_dir(e, p, base, join(parts, parts.size()));
        case AE_IFLNK: return make_symlink(e, p, base);
        case AE_IFCHR:
        case AE_IFBLK:
            // A 0:0 char device is an overlay whiteout already: harmless, opens nothing.
            if (!opts_.allow_devices && !(type == AE_IFCHR && archive_entry_rdev(e) == 0)) return;
            return make_node(e, p, base, type, archive_entry_rdev(e));
        case AE_IFIFO: return make_node(e, p, base, type, 0);
        case AE_IFSOCK: return;  // a socket is only meaningful to the process that bound it
        default: throw error("unknown file type " + std::to_string(type));
        }
    }

    /// Modes and mtimes of directories, applied last: entries created inside a directory change
    /// its mtime, and a read-only mode would stop the entries that follow.
    void finish_directories() {
        for (const auto& [path, d] : dirs_) {
            int fd = try_open_in_root(root_, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            if (fd < 0) continue;  // a later entry replaced it
            unique_fd dir(fd);
            struct stat st {};
            if (::fstat(dir.get(), &st) < 0 || st.st_ino != d.ino || st.st_dev != d.dev) continue;
            with_context("layer entry " + quote(path.empty() ? "." : path), [&] {
                if (::fchmod(dir.get(), d.mode) < 0) throw_errno("chmod");
                if (d.has_times && ::futimens(dir.get(), d.times) < 0) throw_errno("set times");
            });
        }
    }

private:
    struct deferred_dir {
        dev_t dev;
        ino_t ino;
        mode_t mode;
        bool has_times;
        timespec times[2];
    };

    // Clears the way for a new `name` below `parent`: true when an existing directory is kept
    // (a directory entry over a directory merges), else whatever is there is removed.
    static bool replace(int parent, const std::string& name, bool keep_dir) {
        struct stat st {};
        if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) return false;
            throw_errno("stat", quote(name));
        }
        if (keep_dir && S_ISDIR(st.st_mode)) return true;
        remove_at(parent, name);
        return false;
    }

    static void owner_of(archive_entry* e, uid_t& uid, gid_t& gid) {
        la_int64_t u = archive_entry_uid(e), g = archive_entry_gid(e);
        if (u < 0 || g < 0 || u >= 0xffffffffLL || g >= 0xffffffffLL) throw error("owner out of range");
        uid = static_cast<uid_t>(u);
        gid = static_cast<gid_t>(g);
    }

    static bool times_of(archive_entry* e, timespec times[2]) {
        if (!archive_entry_mtime_is_set(e)) return false;
        times[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
        times[0] = archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                                                 : times[1];
        return true;
    }

    // Applies the entry's xattrs through `fd` (a regular file or directory) or, for other types,
    // through the path of `name` below `parent` without following it.
    static void set_xattrs(archive_entry* e, int fd, int parent, const std::string& name, bool user_ok) {
        if (archive_entry_xattr_reset(e) == 0) return;
        const char* key = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
            std::string_view k = key;
            if (starts_with(k, overlay_xattr_prefix)) continue;  // overlay metadata only from whiteouts
            if (starts_with(k, "user.") && !user_ok) continue;   // the kernel allows user.* on files and dirs only
            int r = fd >= 0 ? ::fsetxattr(fd, key, value, size, 0)
                            : ::lsetxattr(at_path(parent, name).c_str(), key, value, size, 0);
            if (r < 0) throw_errno("setxattr", k);
        }
    }

    void make_file(archive* a, archive_entry* e, int parent, const std::string& name) {
        replace(parent, name, false);
        // O_EXCL: if anything appeared at `name`, fail rather than write through it.
        unique_fd fd(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) throw_errno("create");
        off_t end = 0;
        for (;;) {
            const void* buf = nullptr;
            size_t size = 0;
            la_int64_t offset = 0;
            int r = archive_read_data_block(a, &buf, &size, &offset);
            if (r == ARCHIVE_EOF) break;
            check_archive(a, r, "read");
            pwrite_all(fd.get(), buf, size, static_cast<off_t>(offset));
            end = std::max(end, static_cast<off_t>(offset + static_cast<la_int64_t>(size)));
        }
        if (archive_entry_size_is_set(e) && end < archive_entry_size(e))  // a sparse file's trailing hole
            if (::ftruncate(fd.get(), archive_entry_size(e)) < 0) throw_errno("truncate");
        uid_t uid;
        gid_t gid;
        owner_of(e, uid, gid);
        if (::fchown(fd.get(), uid, gid) < 0) throw_errno("chown");
        if (::fchmod(fd.get(), archive_entry_perm(e)) < 0) throw_errno("chmod");  // after chown, which clears setuid
        set_xattrs(e, fd.get(), parent, name, true);
        timespec times[2];
        if (times_of(e, times) && ::futimens(fd.get(), times) < 0) throw_errno("set times");
    }

    void make_dir(archive_entry* e, int parent, const std::string& name, const std::string& path) {
        if (!replace(parent, name, true) && ::mkdirat(parent, name.c_str(), 0700) < 0) throw_errno("mkdir");
        unique_fd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) throw_errno("open");
        set_dir_metadata(e, dir, path);
    }

    void set_dir_metadata(archive_entry* e, const unique_fd& dir, const std::string& path) {
        uid_t uid;
        gid_t gid;
        owner_of(e, uid, gid);
        if (::fchown(dir.get(), uid, gid) < 0) throw_errno("chown");
        set_xattrs(e, dir.get(), -1, {}, true);
        struct stat st {};
        if (::fstat(dir.get(), &st) < 0) throw_errno("stat");
        deferred_dir d{st.st_dev, st.st_ino, archive_entry_perm(e), false, {}};
        d.has_times = times_of(e, d.times);
        dirs_.insert_or_assign(path, d);
    }

    void make_symlink(archive_entry* e, int parent, const std::string& name) {
        std::string target = entry_text(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
        replace(parent, name, false);
        // Stored as written: it is resolved later, inside the container's root.
        if (::symlinkat(target.c_str(), parent, name.c_str()) < 0) throw_errno("symlink");
        set_node_metadata(e, parent, name, false);
    }

    void make_node(archive_entry* e, int parent, const std::string& name, mode_t type, dev_t rdev) {
        replace(parent, name, false);
        if (::mknodat(parent, name.c_str(), type | 0600, rdev) < 0) throw_errno("mknod");
        set_node_metadata(e, parent, name, true);
    }

    // Owner, mode, xattrs and times of a symlink, device or fifo we have just made at `name`.
    static void set_node_metadata(archive_entry* e, int parent, const std::string& name, bool chmod) {
        uid_t uid;
        gid_t gid;
        owner_of(e, uid, gid);
        if (::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("chown");
        // Not a symlink (we made a node there a moment ago), so following is moot.
        if (chmod && ::fchmodat(parent, name.c_str(), archive_entry_perm(e), 0) < 0) throw_errno("chmod");
        set_xattrs(e, -1, parent, name, false);
        timespec times[2];
        if (times_of(e, times) && ::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0)
            throw_errno("set times");
    }

    void make_hardlink(archive_entry* e, int parent, const std::string& name) {
        std::string target = entry_text(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e));
        std::vector<std::string> parts = clean_components(target);
        if (parts.empty()) throw error("hardlink to the layer root");
        // The target's directory resolves inside the root; its last component is linked as it
        // is (a symlink stays a symlink), so no link ever reaches a file outside.
        int fd = try_open_in_root(root_, join(parts, parts.size() - 1), O_PATH | O_DIRECTORY);
        if (fd < 0) throw_errno_code(-fd, "hardlink target", quote(target));
        unique_fd tparent(fd);
        const std::string& tname = parts.back();
        struct stat tst {}, st {};
        if (::fstatat(tparent.get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) < 0)
            throw_errno("hardlink target", quote(target));
        if (S_ISDIR(tst.st_mode)) throw error("hardlink target " + quote(target) + " is a directory");
        if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
            st.st_ino == tst.st_ino)
            return;  // already that file
        replace(parent, name, false);
        if (::linkat(tparent.get(), tname.c_str(), parent, name.c_str(), 0) < 0) throw_errno("link to", quote(target));
    }

    // ".wh..wh..opq": the directory hides what lower layers have in it. ".wh.NAME": NAME is
    // deleted, which overlayfs spells as a char device 0:0.
    static void whiteout(int parent, const std::string& base) {
        if (base == opaque_marker) {
            unique_fd dir(::openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!dir) throw_errno("open");
            if (::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) < 0)
                throw_errno("setxattr", "trusted.overlay.opaque");
            return;
        }
        std::string victim = base.substr(whiteout_prefix.size());
        if (starts_with(victim, whiteout_prefix)) return;  // other ".wh..wh." markers (aufs) mean nothing here
        if (victim.empty() || victim == "." || victim == "..") throw error("not a whiteout of a name");
        replace(parent, victim, false);
        if (::mknodat(parent, victim.c_str(), S_IFCHR, makedev(0, 0)) < 0) throw_errno("mknod whiteout", quote(victim));
    }

    borrowed_fd root_;
    unpack_options opts_;
    std::unordered_map<std::string, deferred_dir> dirs_;
};

// ---- Packing ---------------------------------------------------------------------------------

// The output side of pack_layer: the tar bytes are hashed (DiffID) and fed to a second writer
// that only gzips them (libarchive's raw format), whose output is hashed (blob) and written.
class layer_sink {
public:
    explicit layer_sink(int out) : out_(out) {
        gz_ = new_writer();
        check_archive(gz_.get(), archive_write_set_format_raw(gz_.get()), "gzip layer");
        check_archive(gz_.get(), archive_write_add_filter_gzip(gz_.get()), "gzip layer");
        // No time in the gzip header: the same tar gives the same bytes.
        check_archive(gz_.get(), archive_write_set_filter_option(gz_.get(), "gzip", "timestamp", nullptr), "gzip layer");
        check_archive(gz_.get(), archive_write_set_bytes_in_last_block(gz_.get(), 1), "gzip layer");
        check_archive(gz_.get(), archive_write_open(gz_.get(), this, nullptr, write_blob, nullptr), "gzip layer");
        entry_ptr e(archive_entry_new());
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_pathname(e.get(), "layer.tar");
        check_archive(gz_.get(), archive_write_header(gz_.get(), e.get()), "gzip layer");

        tar_ = new_writer();
        check_archive(tar_.get(), archive_write_set_format_pax_restricted(tar_.get()), "write layer tar");
        check_archive(tar_.get(), archive_write_set_bytes_in_last_block(tar_.get(), 1), "write layer tar");
        check_archive(tar_.get(), archive_write_open(tar_.get(), this, nullptr, write_tar, nullptr), "write layer tar");
    }

    archive* tar() { return tar_.get(); }

    layer_digests finish() {
        check_archive(tar_.get(), archive_write_close(tar_.get()), "write layer tar");
        if (!error_.empty()) throw error(error_);
        check_archive(gz_.get(), archive_write_close(gz_.get()), "gzip layer");
        if (!error_.empty()) throw error(error_);
        return {diff_.finish(), blob_.finish(), size_};
    }

private:
    static la_ssize_t write_tar(archive* a, void* client, const void* buf, size_t n) {
        auto* self = static_cast<layer_sink*>(client);
        try {
            self->diff_.update(buf, n);
        } catch (const std::exception& e) {
            self->error_ = e.what();
        }
        if (self->error_.empty() && archive_write_data(self->gz_.get(), buf, n) < 0)
            self->error_ = "gzip layer: " + archive_message(self->gz_.get());
        if (!self->error_.empty()) {
            archive_set_error(a, EIO, "%s", self->error_.c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }

    static la_ssize_t write_blob(archive* a, void* client, const void* buf, size_t n) {
        auto* self = static_cast<layer_sink*>(client);
        try {
            self->blob_.update(buf, n);
            write_all(self->out_, std::string_view(static_cast<const char*>(buf), n), "layer blob");
        } catch (const std::exception& e) {
            self->error_ = e.what();
            archive_set_error(a, EIO, "%s", e.what());
            return -1;
        }
        self->size_ += n;
        return static_cast<la_ssize_t>(n);
    }

    int out_;
    sha256 diff_, blob_;
    uint64_t size_ = 0;
    std::string error_;
    write_archive gz_, tar_;  // tar_ last: destroyed first, while gz_ still takes its bytes
};

// The xattrs of `name` below `dir`, sorted by name, without following it.
std::map<std::string, std::string> read_xattrs(int dir, const std::string& name) {
    std::map<std::string, std::string> out;
    std::string path = at_path(dir, name);
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) return out;
    if (n < 0) throw_errno("listxattr");
    std::string names(static_cast<size_t>(n), '\0');
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n < 0) throw_errno("listxattr");
    names.resize(static_cast<size_t>(n));
    for (size_t i = 0; i < names.size();) {
        std::string key(names.c_str() + i);
        i += key.size() + 1;
        if (key.empty()) continue;
        ssize_t vn = ::lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
        if (vn < 0 && errno == ENODATA) continue;
        if (vn < 0) throw_errno("getxattr", key);
        std::string value(static_cast<size_t>(vn), '\0');
        vn = ::lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
        if (vn < 0) throw_errno("getxattr", key);
        value.resize(static_cast<size_t>(vn));
        out.emplace(std::move(key), std::move(value));
    }
    return out;
}

class packer {
public:
    explicit packer(archive* tar) : tar_(tar) {}

    // Writes the entries below `dir` (whose own entry is already written), names prefixed with
    // `prefix` ("" or "a/b/"), in byte order of the names they take in the tar.
    void walk(int dir, const std::string& prefix) {
        struct child {
            std::string tar_name, name;
            struct stat st;
        };
        std::vector<child> children;
        {
            DIR* d = ::fdopendir(::dup(dir));
            if (!d) throw_errno("opendir", quote(prefix.empty() ? "." : prefix));
            std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
            errno = 0;
            while (dirent* de = ::readdir(d)) {
                std::string n = de->d_name;
                if (n == "." || n == "..") continue;
                child c{n, n, {}};
                if (::fstatat(dir, n.c_str(), &c.st, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", quote(prefix + n));
                if (S_ISCHR(c.st.st_mode) && c.st.st_rdev == makedev(0, 0))
                    c.tar_name = std::string(whiteout_prefix) + n;
                children.push_back(std::move(c));
            }
        }
        std::sort(children.begin(), children.end(), [](const child& a, const child& b) { return a.tar_name < b.tar_name; });
        for (const auto& c : children) {
            std::string path = prefix + c.tar_name;
            unique_fd sub = with_context("layer entry " + quote(path), [&] { return write_child(dir, c.name, path, c.st); });
            if (sub) walk(sub.get(), path + "/");
        }
    }

private:
    // Writes one entry; returns the directory to walk next when it is one.
    unique_fd write_child(int dir, const std::string& name, const std::string& path, const struct stat& st) {
        if (S_ISSOCK(st.st_mode)) return {};  // as tar tools do
        entry_ptr e(archive_entry_new());
        archive_entry_copy_pathname(e.get(), path.c_str());
        archive_entry_set_uid(e.get(), st.st_uid);
        archive_entry_set_gid(e.get(), st.st_gid);
        archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);

        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {  // an overlay whiteout
            archive_entry_set_mode(e.get(), AE_IFREG | 0644);
            archive_entry_set_size(e.get(), 0);
            write_header(e.get());
            return {};
        }

        auto xattrs = read_xattrs(dir, name);
        bool opaque = false;
        for (const auto& [key, value] : xattrs) {
            if (!starts_with(key, overlay_xattr_prefix)) {
                archive_entry_xattr_add_entry(e.get(), key.c_str(), value.data(), value.size());
            } else if (key == "trusted.overlay.opaque") {
                opaque = value == "y";
            } else if (key == "trusted.overlay.redirect" || key == "trusted.overlay.metacopy") {
                // The content lives in a lower layer: this upper alone is not the layer.
                throw error(key + " is set: mount the build's overlay without redirect_dir and metacopy");
            }
        }

        archive_entry_set_mode(e.get(), st.st_mode);
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino}, path);
            if (!fresh) {
                archive_entry_copy_hardlink(e.get(), it->second.c_str());
                archive_entry_set_size(e.get(), 0);
                write_header(e.get());
                return {};
            }
        }
        if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t n = ::readlinkat(dir, name.c_str(), target.data(), target.size());
            if (n < 0) throw_errno("readlink");
            target.resize(static_cast<size_t>(n));
            archive_entry_copy_symlink(e.get(), target.c_str());
        }
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) archive_entry_set_rdev(e.get(), st.st_rdev);
        if (S_ISREG(st.st_mode)) {
            archive_entry_set_size(e.get(), st.st_size);
            write_header(e.get());
            write_data(dir, name, st);
            return {};
        }
        write_header(e.get());
        if (!S_ISDIR(st.st_mode)) return {};
        unique_fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) throw_errno("open");
        if (opaque) write_opaque_marker(path, st);
        return sub;
    }

    void write_opaque_marker(const std::string& dir_path, const struct stat& st) {
        entry_ptr e(archive_entry_new());
        archive_entry_copy_pathname(e.get(), (dir_path + "/" + std::string(opaque_marker)).c_str());
        archive_entry_set_mode(e.get(), AE_IFREG | 0644);
        archive_entry_set_size(e.get(), 0);
        archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
        write_header(e.get());
    }

    void write_header(archive_entry* e) { check_archive(tar_, archive_write_header(tar_, e), "write header"); }

    void write_data(int dir, const std::string& name, const struct stat& st) {
        int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
        if (fd < 0 && errno == EPERM) fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) throw_errno("open");
        unique_fd file(fd);
        buf_.resize(io_chunk);
        off_t left = st.st_size;
        while (left > 0) {
            ssize_t n = ::read(file.get(), buf_.data(), std::min(buf_.size(), static_cast<size_t>(left)));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read");
            if (n == 0) throw error("file shrank while being packed");
            if (archive_write_data(tar_, buf_.data(), static_cast<size_t>(n)) < 0)
                throw error("write data: " + archive_message(tar_), archive_errno(tar_));
            left -= n;
        }
    }

    archive* tar_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
    std::vector<char> buf_;
};

}  // namespace

layer_digests unpack_layer(borrowed_fd blob, borrowed_fd dir, const unpack_options& opts) {
    layer_stream in(blob.get());
    archive* tar = in.open_tar();
    unpacker out(dir, opts);
    std::string last;
    for (;;) {
        archive_entry* e = nullptr;
        int r = archive_read_next_header(tar, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN)
            throw error("read layer" + (last.empty() ? std::string() : " after entry " + quote(last)) + ": " +
                            archive_message(tar),
                        archive_errno(tar));
        last = entry_text(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
        with_context("layer entry " + quote(last), [&] { out.extract(tar, e, last); });
    }
    out.finish_directories();
    return in.finish();
}

layer_digests pack_layer(borrowed_fd upper, borrowed_fd out) {
    unique_fd root(::openat(upper.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open layer directory");
    layer_sink sink(out.get());
    packer(sink.tar()).walk(root.get(), "");
    return sink.finish();
}

digest diff_id_of(borrowed_fd blob) { return layer_stream(blob.get()).finish().diff_id; }

}  // namespace pieces::image
