#include "core/linux/terminal.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/socket.h"

namespace pieces::linux_ {

namespace {

// The file the console is bound on: /dev/console in the container, as a regular file we
// created or a device node the image put there, never through a symlink (the image's, or one
// swapped in by the container) that would put the pty over a file elsewhere, such as a procfs
// file the container could then write through the console (CVE-2025-52565).
unique_fd console_target() {
    unique_fd root = open_path("/", O_PATH | O_DIRECTORY);
    unique_fd dev = mkdir_all_in_root(root, "/dev");
    struct stat st {};
    if (::fstatat(dev.get(), "console", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) throw error("\"/dev/console\" is a directory");
        if (::unlinkat(dev.get(), "console", 0) < 0) throw_errno("remove", "\"/dev/console\"");
    }
    unique_fd dir(::openat(dev.get(), ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!dir) throw_errno("open", "\"/dev\"");
    int made = ::openat(dir.get(), "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (made >= 0) ::close(made);
    else if (errno != EEXIST) throw_errno("create", "\"/dev/console\"");
    unique_fd target(::openat(dir.get(), "console", O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!target) throw_errno("open", "\"/dev/console\"");
    if (::fstat(target.get(), &st) < 0) throw_errno("stat", "\"/dev/console\"");
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        throw error("\"/dev/console\" changed under us: refusing to bind the console on it");
    return target;
}

// Binds the pty slave over /dev/console from the fd we hold (no path to swap), after checking
// it is a pty slave.
void bind_console(borrowed_fd slave) {
    struct stat st {};
    if (::fstat(slave.get(), &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 || major(st.st_rdev) > 143)
        throw error("console: the pty peer is not a pty slave device");
    unique_fd target = console_target();
    unique_fd tree(::open_tree(slave.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
    if (!tree) throw_errno("open_tree", "pty slave");
    if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        throw_errno("bind pty on", "\"/dev/console\"");
}

}  // namespace

void setup_console(borrowed_fd socket, std::optional<std::pair<unsigned, unsigned>> size, bool bind_on_console) {
    unique_fd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master) throw_errno("open", "\"/dev/ptmx\"");
    if (::unlockpt(master.get()) < 0) throw_errno("unlockpt");
    unique_fd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave) throw_errno("open pty peer");
    if (size) {
        winsize ws{};
        ws.ws_row = static_cast<unsigned short>(size->first);
        ws.ws_col = static_cast<unsigned short>(size->second);
        if (::ioctl(slave.get(), TIOCSWINSZ, &ws) < 0) throw_errno("set terminal size");
    }
    if (bind_on_console) bind_console(slave);
    char name[128] = "";
    ::ptsname_r(master.get(), name, sizeof name);
    send_with_fd(socket, master, name, "pty master to the console socket");
    if (::setsid() < 0) throw_errno("setsid");
    if (::ioctl(slave.get(), TIOCSCTTY, 0) < 0) throw_errno("set controlling terminal");
    for (int target = 0; target < 3; ++target)
        if (::dup2(slave.get(), target) < 0) throw_errno("dup2 pty to", std::to_string(target));
}

}  // namespace pieces::linux_
