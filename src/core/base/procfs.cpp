#include "core/base/procfs.h"

#include "core/base/error.h"
#include "core/base/fs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace pieces::procfs {

std::vector<mount_info> mountinfo(const std::string& pid) {
    std::vector<mount_info> out;
    std::ifstream in("/proc/" + pid + "/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::string id, parent, devno, field;
        mount_info m;
        std::string opts;
        ss >> id >> parent >> devno >> m.root >> m.mount_point >> opts;
        while (ss >> field && field != "-") {
        }
        std::string source;
        ss >> m.fstype >> source >> m.super_options;
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<cgroup_membership> cgroups(const std::string& pid) {
    std::vector<cgroup_membership> out;
    std::ifstream in("/proc/" + pid + "/cgroup");
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':');
        auto b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        out.push_back({std::stoi(line.substr(0, a)), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
    }
    return out;
}

std::optional<process_stat> stat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(in, text)) return std::nullopt;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream ss(text.substr(close + 2));
    process_stat st;
    std::string skip;
    ss >> st.state >> st.ppid;
    for (int field = 5; field < 22; ++field) ss >> skip;  // pgrp .. itrealvalue
    ss >> st.start_time;
    return st;
}


namespace {

// Throws unless `fd` is a file on procfs.
void check_on_procfs(int fd, const std::string& path) {
    struct statfs fs {};
    if (::fstatfs(fd, &fs) < 0) throw_errno("statfs", path);
    if (fs.f_type != PROC_SUPER_MAGIC) throw error(path + " is not on procfs: refusing to write");
}

// A procfs instance mounted nowhere: fsopen, then fsmount to a detached mount. Needs
// CAP_SYS_ADMIN over our pid namespace; -1 where that or the calls are missing.
int private_procfs() {
    int fs = static_cast<int>(::syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC));
    if (fs < 0) return -1;
    unique_fd ctx(fs);
    if (::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) return -1;
    return static_cast<int>(::syscall(SYS_fsmount, ctx.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
}

// "self/x" -> "<pid>/x", "thread-self/x" -> "<pid>/task/<tid>/x": the names of ourselves in
// the instance (symlinks, which the resolution below refuses to follow).
std::string own_names(std::string_view path) {
    auto starts = [&](std::string_view prefix) {
        return path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
    };
    if (starts("thread-self"))
        return std::to_string(::getpid()) + "/task/" + std::to_string(::gettid()) + std::string(path.substr(11));
    if (starts("self")) return std::to_string(::getpid()) + std::string(path.substr(4));
    return std::string(path);
}

}  // namespace

handle handle::open() {
    int fd = private_procfs();
    if (fd >= 0) return handle(unique_fd(fd), true);
    return open_shared();
}

handle handle::open_shared() {
    unique_fd proc = open_path("/proc", O_PATH | O_DIRECTORY);
    check_on_procfs(proc.get(), "/proc");
    return handle(std::move(proc), false);
}

void handle::write(std::string_view path, std::string_view data) const {
    std::string name = own_names(path);
    std::string shown = quote("/proc/" + std::string(path));
    open_how how{};
    how.flags = O_WRONLY | O_NOCTTY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = static_cast<int>(::syscall(SYS_openat2, root_.get(), name.c_str(), &how, sizeof how));
    if (fd < 0 && (errno == ENOSYS || errno == EPERM) && !private_) {
        // openat2 missing or filtered: the shared /proc, one plain open, checked below.
        fd = ::openat(root_.get(), name.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0 && errno == EXDEV) throw error(shown + ": leaves procfs or crosses a mount laid over it: refusing to write");
    if (fd < 0) throw_errno("open", shown);
    unique_fd file(fd);
    check_on_procfs(file.get(), shown);
    write_all(file, data, shown);
}


}  // namespace pieces::procfs
