#include "core/base/procfs.h"

#include "core/base/error.h"
#include "core/base/fs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>

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

void check_on_procfs(int fd, const std::string& path) {
    struct statfs fs {};
    if (::fstatfs(fd, &fs) < 0) throw_errno("statfs", quote(path));
    if (fs.f_type != PROC_SUPER_MAGIC) throw error(quote(path) + " is not on procfs: refusing to write");
}

void write(const std::string& path, std::string_view data) {
    unique_fd fd = open_path(path, O_WRONLY | O_NOCTTY);
    check_on_procfs(fd.get(), path);
    write_all(fd, data, quote(path));
}

}  // namespace pieces::procfs
