#include "core/linux/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/linux/mount_options.h"

namespace pieces::linux_ {
namespace {

unsigned long propagation_flags(const std::string& name) {
    if (name.empty()) return MS_PRIVATE | MS_REC;
    auto opts = parse_mount_options({name});
    return opts.propagation.empty() ? (MS_PRIVATE | MS_REC) : opts.propagation.front();
}

struct default_device {
    const char* path;
    unsigned major, minor;
};
constexpr default_device default_devices[] = {
    {"/dev/null", 1, 3}, {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

mode_t device_type_bits(char type) {
    switch (type) {
        case 'b': return S_IFBLK;
        case 'p': return S_IFIFO;
        default: return S_IFCHR;  // 'c' and 'u'
    }
}

// A user namespace cannot mknod; bind the host's node over an empty file instead.
void bind_device(const rootfs_target& t, const spec::device& d) {
    unique_fd dest = make_file_in_root(t.root, d.path, 0);
    unique_fd tree(::open_tree(AT_FDCWD, d.path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) throw_errno("open_tree", quote(d.path));
    if (::move_mount(tree.get(), "", dest.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        throw_errno("bind device", quote(d.path));
}

void make_device_node(const rootfs_target& t, const spec::device& d) {
    unique_fd parent = mkdir_all_in_root(t.root, parent_of(d.path));
    std::string name = base_of(d.path);
    // Replace whatever the image had there; the config decides what this path is.
    if (::unlinkat(parent.get(), name.c_str(), 0) < 0 && errno != ENOENT) throw_errno("unlink", quote(d.path));
    mode_t perm = d.file_mode.value_or(0666) & 07777;
    dev_t dev = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
    if (::mknodat(parent.get(), name.c_str(), device_type_bits(d.type) | perm, dev) < 0)
        throw_errno("mknod", quote(d.path));
    if (::fchmodat(parent.get(), name.c_str(), perm, 0) < 0) throw_errno("chmod", quote(d.path));
    if (::fchownat(parent.get(), name.c_str(), d.uid.value_or(0), d.gid.value_or(0), AT_SYMLINK_NOFOLLOW) < 0)
        throw_errno("chown", quote(d.path));
}

void make_symlink(const rootfs_target& t, const char* target, const char* path) {
    unique_fd parent = mkdir_all_in_root(t.root, parent_of(path));
    std::string name = base_of(path);
    if (::symlinkat(target, parent.get(), name.c_str()) < 0 && errno != EEXIST)
        throw_errno("symlink " + quote(target), quote(path));
}

bool has_mount_at(const spec::config& cfg, std::string_view dest) {
    for (const auto& m : cfg.mounts)
        if (m.destination == dest) return true;
    return false;
}

}  // namespace

rootfs_target prepare_rootfs(const spec::config& cfg, const std::string& bundle, bool in_userns, bool cgroupns) {
    rootfs_target t;
    t.bundle = bundle;
    t.in_userns = in_userns;
    t.cgroupns = cgroupns;
    t.mount_label = cfg.linux.mount_label;
    std::string root = cfg.root_path[0] == '/' ? cfg.root_path : bundle + "/" + cfg.root_path;
    char real[PATH_MAX];
    if (!::realpath(root.c_str(), real)) throw_errno("resolve rootfs", quote(root));
    t.rootfs = real;
    if (::mount(nullptr, "/", nullptr, propagation_flags(cfg.linux.rootfs_propagation), nullptr) < 0)
        throw_errno("set propagation of", "\"/\"");
    // pivot_root needs the new root to be a mount point: bind it over itself.
    if (::mount(t.rootfs.c_str(), t.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        throw_errno("bind rootfs", quote(t.rootfs));
    t.root = open_path(t.rootfs, O_PATH | O_DIRECTORY);
    return t;
}

void create_devices(const rootfs_target& t, const spec::config& cfg) {
    // A bind mount of a host /dev brings its own nodes.
    bool dev_is_bind = false;
    for (const auto& m : cfg.mounts)
        if (m.destination == "/dev" && (m.type == "bind" || parse_mount_options(m.options).bind)) dev_is_bind = true;
    std::vector<spec::device> devices;
    if (!dev_is_bind) {
        for (const auto& d : default_devices) {
            spec::device dev;
            dev.type = 'c';
            dev.path = d.path;
            dev.major = d.major;
            dev.minor = d.minor;
            dev.file_mode = 0666;
            devices.push_back(dev);
        }
    }
    devices.insert(devices.end(), cfg.linux.devices.begin(), cfg.linux.devices.end());
    mode_t old = ::umask(0);
    try {
        for (const auto& d : devices) {
            with_context("device " + quote(d.path), [&] {
                if (t.in_userns) bind_device(t, d);
                else make_device_node(t, d);
            });
        }
    } catch (...) {
        ::umask(old);
        throw;
    }
    ::umask(old);
    if (dev_is_bind) return;
    make_symlink(t, "/proc/self/fd", "/dev/fd");
    make_symlink(t, "/proc/self/fd/0", "/dev/stdin");
    make_symlink(t, "/proc/self/fd/1", "/dev/stdout");
    make_symlink(t, "/proc/self/fd/2", "/dev/stderr");
    if (has_mount_at(cfg, "/dev/pts")) {
        // The devpts instance's own ptmx, so ptys opened in the container belong to it.
        unique_fd parent = mkdir_all_in_root(t.root, "/dev");
        if (::unlinkat(parent.get(), "ptmx", 0) < 0 && errno != ENOENT) throw_errno("unlink", "\"/dev/ptmx\"");
        make_symlink(t, "pts/ptmx", "/dev/ptmx");
    }
}

void enter_rootfs(const rootfs_target& t, bool no_pivot) {
    if (::chdir(t.rootfs.c_str()) < 0) throw_errno("chdir", quote(t.rootfs));
    if (no_pivot) {
        if (::mount(t.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0) throw_errno("move rootfs to", "\"/\"");
        if (::chroot(".") < 0) throw_errno("chroot", quote(t.rootfs));
    } else {
        unique_fd old_root = open_path("/", O_DIRECTORY | O_PATH);
        // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the new.
        if (::syscall(SYS_pivot_root, ".", ".") < 0) throw_errno("pivot_root", quote(t.rootfs));
        if (::fchdir(old_root.get()) < 0) throw_errno("fchdir", "old root");
        // Keep the unmount from propagating back to the host.
        if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) throw_errno("make old root slave", "\".\"");
        if (::umount2(".", MNT_DETACH) < 0) throw_errno("detach old root", "\".\"");
    }
    if (::chdir("/") < 0) throw_errno("chdir", "\"/\"");
}

void make_root_readonly(const rootfs_target& t) {
    unique_fd root = open_path("/", O_PATH | O_DIRECTORY);
    (void)t;
    set_mount_attr(root, MOUNT_ATTR_RDONLY, 0, false, "/");
}

}  // namespace pieces::linux_
