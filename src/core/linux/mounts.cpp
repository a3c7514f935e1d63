#include "core/linux/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"
#include "core/base/procfs.h"
#include "core/linux/lsm.h"
#include "core/linux/mount_options.h"

namespace pieces::linux_ {
namespace {

// MS_* flags that mount_setattr can express, and their MOUNT_ATTR_* twins.
struct attr_map {
    unsigned long ms;
    uint64_t attr;
};
constexpr attr_map attr_flags[] = {
    {MS_RDONLY, MOUNT_ATTR_RDONLY},   {MS_NOSUID, MOUNT_ATTR_NOSUID},
    {MS_NODEV, MOUNT_ATTR_NODEV},     {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
    {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME},
};

void to_mount_attrs(const mount_options& o, uint64_t& set, uint64_t& clear) {
    for (const auto& [ms, attr] : attr_flags) {
        if (o.flags & ms) set |= attr;
        if (o.clear & ms) clear |= attr;
    }
    // The atime modes are one field: setting one clears the others.
    if (o.flags & MS_NOATIME) {
        set |= MOUNT_ATTR_NOATIME;
        clear |= MOUNT_ATTR__ATIME;
    } else if (o.flags & MS_STRICTATIME) {
        set |= MOUNT_ATTR_STRICTATIME;
        clear |= MOUNT_ATTR__ATIME;
    } else if (o.flags & MS_RELATIME) {
        set |= MOUNT_ATTR_RELATIME;
        clear |= MOUNT_ATTR__ATIME;
    }
}

std::string resolve_source(const rootfs_target& t, const std::string& source) {
    if (source.empty() || source[0] == '/') return source;
    return t.bundle + "/" + source;
}

// Opens (creating when missing) the destination: a directory, or a file when the source is one.
unique_fd open_destination(const rootfs_target& t, const std::string& dest, bool as_file) {
    return with_context("mount destination " + quote(dest), [&] {
        return as_file ? make_file_in_root(t.root, dest) : mkdir_all_in_root(t.root, dest);
    });
}

void apply_propagation(const std::string& dest, borrowed_fd mnt, const std::vector<unsigned long>& propagation) {
    for (unsigned long p : propagation) {
        if (::mount(nullptr, fd_path(mnt).c_str(), nullptr, p, nullptr) < 0)
            throw_errno("set propagation of", quote(dest));
    }
}

void bind_mount(const rootfs_target& t, const spec::mount& m, const mount_options& o) {
    std::string source = resolve_source(t, m.source);
    struct stat st {};
    if (::stat(source.c_str(), &st) < 0) throw_errno("stat bind source", quote(source));
    unique_fd dest = open_destination(t, m.destination, !S_ISDIR(st.st_mode));
    unsigned tree_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((o.flags & MS_REC) ? AT_RECURSIVE : 0);
    unique_fd tree(::open_tree(AT_FDCWD, source.c_str(), tree_flags));
    if (!tree) throw_errno("open_tree", quote(source));
    uint64_t set = 0, clear = 0;
    to_mount_attrs(o, set, clear);
    if (set || clear) set_mount_attr(tree, set, clear, false, m.destination);
    if (o.recursive_readonly) set_mount_attr(tree, MOUNT_ATTR_RDONLY, 0, true, m.destination);
    if (::move_mount(tree.get(), "", dest.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        throw_errno("bind mount " + quote(source) + " on", quote(m.destination));
    apply_propagation(m.destination, tree, o.propagation);
}

// The controllers (and name=) in a v1 mount's super options, without the other options.
std::set<std::string> controllers_of(const std::string& super_options) {
    static const std::set<std::string> not_controllers = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "nsdelegate"};
    std::set<std::string> out;
    std::istringstream ss(super_options);
    std::string o;
    while (std::getline(ss, o, ','))
        if (!not_controllers.count(o) && o.rfind("release_agent=", 0) != 0) out.insert(o);
    return out;
}

// The cgroup path of this process in the hierarchy mounted as `h`.
std::string own_cgroup(const procfs::mount_info& h) {
    for (const auto& c : procfs::cgroups()) {
        bool match = h.fstype == "cgroup2" ? (c.hierarchy == 0 && c.controllers.empty())
                                           : (!c.controllers.empty() && controllers_of(h.super_options) == controllers_of(c.controllers));
        if (match) return c.path;
    }
    return "/";
}

// The "cgroup" mount type: a tmpfs with one directory per host hierarchy (or cgroup2 alone on a
// pure v2 host), each showing the container's own cgroup as its root.
void mount_cgroups(const rootfs_target& t, const spec::mount& m, const mount_options& o) {
    std::vector<procfs::mount_info> hierarchies;
    for (auto& mi : procfs::mountinfo())
        if (mi.fstype == "cgroup" || mi.fstype == "cgroup2") hierarchies.push_back(std::move(mi));
    unsigned long flags = o.flags & ~static_cast<unsigned long>(MS_RDONLY);
    bool pure_v2 = hierarchies.size() == 1 && hierarchies[0].fstype == "cgroup2" &&
                   hierarchies[0].mount_point == "/sys/fs/cgroup";
    unique_fd dest = open_destination(t, m.destination, false);
    auto mount_one = [&](const procfs::mount_info& h, borrowed_fd at, const std::string& name) {
        if (t.cgroupns) {
            std::string opts = h.fstype == "cgroup" ? h.super_options : std::string();
            // Drop "rw"/"ro" from the super options; the flags say that.
            if (opts.rfind("rw,", 0) == 0 || opts.rfind("ro,", 0) == 0) opts = opts.substr(3);
            if (::mount("cgroup", fd_path(at).c_str(), h.fstype.c_str(), flags | (o.flags & MS_RDONLY),
                        opts.empty() ? nullptr : opts.c_str()) < 0)
                throw_errno("mount " + h.fstype, quote(m.destination + "/" + name));
        } else {
            std::string source = h.mount_point + own_cgroup(h);
            unique_fd tree(::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
            if (!tree) throw_errno("open_tree", quote(source));
            if (o.flags & MS_RDONLY) set_mount_attr(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, false, m.destination);
            if (::move_mount(tree.get(), "", at.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                throw_errno("bind mount " + quote(source) + " on", quote(m.destination + "/" + name));
        }
    };
    if (pure_v2) {
        mount_one(hierarchies[0], dest, "");
        return;
    }
    if (::mount("tmpfs", fd_path(dest).c_str(), "tmpfs", flags, "mode=755") < 0)
        throw_errno("mount tmpfs", quote(m.destination));
    for (const auto& h : hierarchies) {
        if (h.mount_point.rfind("/sys/fs/cgroup/", 0) != 0) continue;
        std::string name = h.mount_point.substr(strlen("/sys/fs/cgroup/"));
        unique_fd sub = open_destination(t, m.destination + "/" + name, false);
        mount_one(h, sub, name);
    }
    if (o.flags & MS_RDONLY) {
        unique_fd top = open_in_root(t.root, m.destination, O_PATH | O_DIRECTORY);
        set_mount_attr(top, MOUNT_ATTR_RDONLY, 0, false, m.destination);
    }
}

// "tmpcopyup": the new tmpfs gets a copy of the directory it covers, and that directory's
// mode and owner.
void copy_up(const rootfs_target& t, const spec::mount& m, borrowed_fd covered) {
    with_context("tmpcopyup", [&] {
        unique_fd fresh = open_in_root(t.root, m.destination, O_RDONLY | O_DIRECTORY);
        copy_tree(covered, fresh, m.destination);
        struct stat st {};
        if (::fstat(covered.get(), &st) < 0) throw_errno("stat", quote(m.destination));
        if (::fchown(fresh.get(), st.st_uid, st.st_gid) < 0 || ::fchmod(fresh.get(), st.st_mode & 07777) < 0)
            throw_errno("set owner and mode of", quote(m.destination));
    });
}

void filesystem_mount(const rootfs_target& t, const spec::mount& m, const mount_options& o) {
    unique_fd dest = open_destination(t, m.destination, false);
    // Held across the mount: still the covered directory once the tmpfs lies over it.
    unique_fd covered;
    if (o.tmpcopyup) {
        if (m.type != "tmpfs") throw error("tmpcopyup applies to tmpfs mounts only, not " + quote(m.type));
        covered.reset(::openat(dest.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!covered) throw_errno("open", quote(m.destination));
    }
    std::string source = m.source.empty() ? m.type : m.source;
    std::string data = with_mount_label(o.data, m.type, t.mount_label);
    unsigned long flags = o.flags;
    // A read-only tmpfs to copy into is made writable for the copy, read-only after it.
    if (covered) flags &= ~static_cast<unsigned long>(MS_RDONLY);
    if (::mount(source.c_str(), fd_path(dest).c_str(), m.type.c_str(), flags,
                data.empty() ? nullptr : data.c_str()) < 0) {
        int err = errno;
        // sysfs cannot be mounted from a user namespace that does not own the network
        // namespace; a recursive bind of the host's /sys is the usual stand-in.
        if (m.type == "sysfs" && err == EPERM && t.in_userns) {
            mount_options bind = o;
            bind.flags |= MS_BIND | MS_REC;
            bind_mount(t, spec::mount{m.destination, "bind", "/sys", {}}, bind);
            return;
        }
        throw_errno_code(err, "mount " + m.type, quote(m.destination) + (data.empty() ? "" : " with \"" + data + "\""));
    }
    if (covered) {
        copy_up(t, m, covered);
        if (o.flags & MS_RDONLY) {
            unique_fd mnt = open_in_root(t.root, m.destination, O_PATH | O_DIRECTORY);
            set_mount_attr(mnt, MOUNT_ATTR_RDONLY, 0, false, m.destination);
        }
    }
    if (!o.propagation.empty() || o.recursive_readonly) {
        unique_fd mnt = open_in_root(t.root, m.destination, O_PATH | O_DIRECTORY);
        if (o.recursive_readonly) set_mount_attr(mnt, MOUNT_ATTR_RDONLY, 0, true, m.destination);
        apply_propagation(m.destination, mnt, o.propagation);
    }
}

}  // namespace

void set_mount_attr(borrowed_fd fd, uint64_t set, uint64_t clear, bool recursive, std::string_view what) {
    mount_attr attr{};
    attr.attr_set = set;
    attr.attr_clr = clear;
    unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    if (::mount_setattr(fd.get(), "", flags, &attr, sizeof attr) < 0) throw_errno("mount_setattr", quote(what));
}

void mount_entry(const rootfs_target& t, const spec::mount& m) {
    mount_options o = parse_mount_options(m.options);
    with_context("mount " + quote(m.destination), [&] {
        if (o.bind || m.type == "bind") {
            bind_mount(t, m, o);
        } else if (m.type == "cgroup" || m.type == "cgroup2") {
            mount_cgroups(t, m, o);
        } else {
            filesystem_mount(t, m, o);
        }
    });
}

void mask_paths(const rootfs_target& t, const std::vector<std::string>& paths) {
    unique_fd devnull;
    for (const std::string& path : paths) {
        int fd = try_open_in_root(t.root, path, O_PATH | O_NOFOLLOW);
        if (fd == -ENOENT) continue;
        if (fd < 0) throw_errno_code(-fd, "open masked path", quote(path));
        unique_fd target(fd);
        struct stat st {};
        if (::fstat(target.get(), &st) < 0) throw_errno("stat masked path", quote(path));
        if (S_ISDIR(st.st_mode)) {
            if (::mount("tmpfs", fd_path(target).c_str(), "tmpfs", MS_RDONLY, "size=0k") < 0)
                throw_errno("mask", quote(path));
            continue;
        }
        if (!devnull) {
            devnull.reset(::open("/dev/null", O_PATH | O_CLOEXEC));
            struct stat ns {};
            // Masking with anything but the real null device would expose what it points to.
            if (!devnull || ::fstat(devnull.get(), &ns) < 0 || !S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
                throw error("mask " + quote(path) + ": /dev/null is not the null device (char 1:3)");
        }
        unique_fd tree(::open_tree(devnull.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
        if (!tree) throw_errno("open_tree", "/dev/null");
        if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            throw_errno("mask", quote(path));
    }
}

void make_paths_readonly(const rootfs_target& t, const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
        int fd = try_open_in_root(t.root, path, O_PATH | O_NOFOLLOW);
        if (fd == -ENOENT) continue;
        if (fd < 0) throw_errno_code(-fd, "open read-only path", quote(path));
        unique_fd target(fd);
        unique_fd tree(::open_tree(target.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
        if (!tree) throw_errno("open_tree", quote(path));
        set_mount_attr(tree, MOUNT_ATTR_RDONLY, 0, true, path);
        if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            throw_errno("make read-only", quote(path));
    }
}

}  // namespace pieces::linux_
