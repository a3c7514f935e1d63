#include "core/base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/base/error.h"

namespace pieces {

std::string quote(std::string_view path) {
    std::string out;
    out.reserve(path.size() + 2);
    out += '"';
    out += path;
    out += '"';
    return out;
}

std::string read_all(borrowed_fd fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read");
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string read_file(const std::string& path) {
    unique_fd fd = open_path(path, O_RDONLY);
    return with_context("read " + quote(path), [&] { return read_all(fd); });
}

void write_all(borrowed_fd fd, std::string_view data, std::string_view what) {
    while (!data.empty()) {
        ssize_t n = ::write(fd.get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write", what);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
}

unique_fd open_path(const std::string& path, int flags, mode_t mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) throw_errno("open", quote(path));
    return unique_fd(fd);
}

void write_file(const std::string& path, std::string_view data, int flags, mode_t mode) {
    unique_fd fd = open_path(path, O_WRONLY | flags, mode);
    write_all(fd, data, quote(path));
}

void write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmp = path + ".tmp";
    write_file(tmp, data, O_CREAT | O_TRUNC, mode);
    if (::rename(tmp.c_str(), path.c_str()) < 0) throw_errno("rename", quote(tmp));
}

std::vector<std::string> split_components(std::string_view path) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view part = path.substr(i, j - i);
        if (!part.empty() && part != ".") parts.emplace_back(part);
        i = j + 1;
    }
    return parts;
}

namespace {


// Resolution without openat2: walks one component at a time with O_NOFOLLOW, expanding
// symlinks ourselves so that "/" and ".." stay clamped at the root.
int walk_in_root(int root, std::string_view path, int flags, mode_t mode) {
    std::vector<std::string> todo = split_components(path);
    std::vector<std::string> stack;  // components resolved so far, for ".."
    std::vector<unique_fd> fds;      // fds[i] is the directory reached after stack[0..i]
    int links = 0;
    auto current = [&]() { return fds.empty() ? root : fds.back().get(); };
    size_t idx = 0;
    while (idx < todo.size()) {
        std::string part = todo[idx++];
        if (part == "..") {
            if (!stack.empty()) {
                stack.pop_back();
                fds.pop_back();
            }
            continue;
        }
        bool last = idx == todo.size();
        int oflags = last ? (flags | O_NOFOLLOW) : (O_PATH | O_DIRECTORY | O_NOFOLLOW);
        int fd = ::openat(current(), part.c_str(), oflags | O_CLOEXEC, mode);
        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR || errno == EMLINK)) {
            // It may be a symlink: read it and splice its target into what is left.
            char target[4096];
            ssize_t n = ::readlinkat(current(), part.c_str(), target, sizeof target - 1);
            if (n < 0) return -errno;
            if (++links > 40) return -ELOOP;
            std::vector<std::string> rest = split_components(std::string_view(target, static_cast<size_t>(n)));
            rest.insert(rest.end(), todo.begin() + static_cast<long>(idx), todo.end());
            todo = std::move(rest);
            idx = 0;
            if (target[0] == '/') {
                stack.clear();
                fds.clear();
            }
            continue;
        }
        if (fd < 0) return -errno;
        if (last) return fd;
        stack.push_back(part);
        fds.emplace_back(fd);
    }
    // The path named the root itself.
    int fd = ::openat(current(), ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

}  // namespace

namespace {
bool have_openat2 = true;
}  // namespace

void use_openat2(bool enabled) { have_openat2 = enabled; }

int try_open_in_root(borrowed_fd root, std::string_view path, int flags, mode_t mode) {
    std::string p(path.empty() ? "." : path);
    if (have_openat2) {
        open_how how{};
        how.flags = static_cast<__u64>(flags | O_CLOEXEC);
        how.mode = (flags & O_CREAT) ? mode : 0;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        for (;;) {
            long fd = ::syscall(SYS_openat2, root.get(), p.c_str(), &how, sizeof how);
            if (fd >= 0) return static_cast<int>(fd);
            if (errno == EAGAIN || errno == EINTR) continue;  // a rename raced the lookup
            if (errno == ENOSYS || errno == EPERM) break;     // missing, or blocked by a filter
            return -errno;
        }
        have_openat2 = false;
    }
    return walk_in_root(root.get(), p, flags, mode);
}

unique_fd open_in_root(borrowed_fd root, std::string_view path, int flags, mode_t mode) {
    int fd = try_open_in_root(root, path, flags, mode);
    if (fd < 0) throw_errno_code(-fd, "open in root", quote(path));
    return unique_fd(fd);
}

std::string parent_of(std::string_view path) {
    auto parts = split_components(path);
    std::string out;
    for (size_t i = 0; i + 1 < parts.size(); ++i) out += "/" + parts[i];
    return out.empty() ? "/" : out;
}

std::string base_of(std::string_view path) {
    auto parts = split_components(path);
    return parts.empty() ? std::string() : parts.back();
}

namespace {

unique_fd mkdir_all_at_depth(borrowed_fd root, std::string_view path, mode_t mode, int depth) {
    int fd = try_open_in_root(root, path, O_PATH | O_DIRECTORY);
    if (fd >= 0) return unique_fd(fd);
    if (fd != -ENOENT) throw_errno_code(-fd, "open in root", quote(path));
    if (depth > 40) throw_errno_code(ELOOP, "mkdir in root", quote(path));
    // Make the parent first (walking up only as far as something is missing), then this
    // directory below the parent's fd, which is already checked to be inside the root.
    std::string name = base_of(path);
    if (name.empty()) throw_errno_code(ENOENT, "open in root", quote(path));
    unique_fd parent = mkdir_all_at_depth(root, parent_of(path), mode, depth + 1);
    // "a/b/.." exists once "a/b" does; the kernel resolves it within the root.
    if (name == "..") return open_in_root(root, path, O_PATH | O_DIRECTORY);
    if (::mkdirat(parent.get(), name.c_str(), mode) < 0) {
        if (errno != EEXIST) throw_errno("mkdir", quote(path));
        // It exists yet does not open: a symlink to somewhere missing. Make its target, read as
        // a path inside the root.
        char target[4096];
        ssize_t n = ::readlinkat(parent.get(), name.c_str(), target, sizeof target - 1);
        if (n > 0) {
            std::string t(target, static_cast<size_t>(n));
            mkdir_all_at_depth(root, t[0] == '/' ? t : parent_of(path) + "/" + t, mode, depth + 1);
        }
    }
    return open_in_root(root, path, O_PATH | O_DIRECTORY);
}

}  // namespace

unique_fd mkdir_all_in_root(borrowed_fd root, std::string_view path, mode_t mode) {
    return mkdir_all_at_depth(root, path, mode, 0);
}

unique_fd make_file_in_root(borrowed_fd root, std::string_view path, mode_t mode) {
    int fd = try_open_in_root(root, path, O_PATH);
    if (fd >= 0) return unique_fd(fd);
    if (fd != -ENOENT) throw_errno_code(-fd, "open in root", quote(path));
    unique_fd dir = mkdir_all_in_root(root, parent_of(path));
    std::string name = base_of(path);
    unique_fd dirfd(::openat(dir.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!dirfd) throw_errno("open", quote(parent_of(path)));
    int created = ::openat(dirfd.get(), name.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
    if (created < 0 && errno != EEXIST) throw_errno("create", quote(path));
    if (created >= 0) ::close(created);
    return open_in_root(root, path, O_PATH);
}

std::string fd_path(borrowed_fd fd) { return "/proc/self/fd/" + std::to_string(fd.get()); }

void close_fds_except(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned next = 0;
    for (int fd : keep) {
        if (fd < 0 || static_cast<unsigned>(fd) < next) continue;
        if (static_cast<unsigned>(fd) > next && ::close_range(next, static_cast<unsigned>(fd) - 1, 0) < 0)
            throw_errno("close_range");
        next = static_cast<unsigned>(fd) + 1;
    }
    if (::close_range(next, ~0U, 0) < 0) throw_errno("close_range");
}

void remove_all(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
        throw error("remove " + quote(path) + ": " + ec.message(), ec.value());
}

struct stat copy_entry(borrowed_fd from, const std::string& name, borrowed_fd to, const std::string& to_name,
                       const copy_options& opts) {
    struct stat st {};
    if (::fstatat(from.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("stat", quote(name));
    struct stat there {};
    if (::fstatat(to.get(), to_name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 && !(S_ISDIR(there.st_mode) && S_ISDIR(st.st_mode))) {
        if (S_ISDIR(there.st_mode)) throw error(quote(to_name) + " is a directory: cannot replace it with a file");
        if (::unlinkat(to.get(), to_name.c_str(), 0) < 0) throw_errno("replace", quote(to_name));
    }
    if (S_ISDIR(st.st_mode)) {
        if (::mkdirat(to.get(), to_name.c_str(), st.st_mode & 07777) < 0 && errno != EEXIST) throw_errno("mkdir", quote(to_name));
    } else if (S_ISREG(st.st_mode)) {
        unique_fd src(::openat(from.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!src) throw_errno("open", quote(name));
        unique_fd dst(::openat(to.get(), to_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777));
        if (!dst) throw_errno("create", quote(to_name));
        for (off_t left = st.st_size; left > 0;) {
            ssize_t n = ::sendfile(dst.get(), src.get(), nullptr, static_cast<size_t>(left));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("copy", quote(name));
            if (n == 0) break;
            left -= n;
        }
    } else if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(from.get(), name.c_str(), target.data(), target.size());
        if (n < 0) throw_errno("readlink", quote(name));
        target.resize(static_cast<size_t>(n));
        if (::symlinkat(target.c_str(), to.get(), to_name.c_str()) < 0) throw_errno("symlink", quote(to_name));
    } else if (!S_ISSOCK(st.st_mode) && ::mknodat(to.get(), to_name.c_str(), st.st_mode, st.st_rdev) < 0) {
        throw_errno("mknod", quote(to_name));
    }
    if (S_ISSOCK(st.st_mode)) return st;
    uid_t uid = opts.owner ? opts.owner->first : st.st_uid;
    gid_t gid = opts.owner ? opts.owner->second : st.st_gid;
    if (::fchownat(to.get(), to_name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("chown", quote(to_name));
    if (!S_ISLNK(st.st_mode) && ::fchmodat(to.get(), to_name.c_str(), st.st_mode & 07777, 0) < 0)
        throw_errno("chmod", quote(to_name));
    timespec times[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(to.get(), to_name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) throw_errno("set times of", quote(to_name));
    return st;
}

void copy_tree(borrowed_fd from, borrowed_fd to, const std::string& where, const copy_options& opts,
               const std::string& relative) {
    unique_fd listing(::openat(from.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!listing) throw_errno("open", quote(where));
    DIR* dir = ::fdopendir(listing.get());
    if (!dir) throw_errno("read directory", quote(where));
    listing.release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
        std::string rel = relative.empty() ? name : relative + "/" + name;
        if (opts.skip && opts.skip(rel)) continue;
        struct stat st = with_context(quote(where + "/" + name), [&] { return copy_entry(from, name, to, name, opts); });
        if (S_ISDIR(st.st_mode)) {
            unique_fd src(::openat(from.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            unique_fd dst(::openat(to.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!src || !dst) throw_errno("open", quote(where + "/" + name));
            copy_tree(src, dst, where + "/" + name, opts, rel);
            // Copying into the directory changed its mtime: put the source's back.
            timespec times[2] = {st.st_atim, st.st_mtim};
            ::utimensat(to.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW);
        }
    }
}

}  // namespace pieces
