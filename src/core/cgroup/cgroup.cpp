#include "core/cgroup/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <thread>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"
#include "core/base/procfs.h"
#include "core/cgroup/systemd.h"

namespace pieces::cgroup {
namespace {

std::string normalize(const std::string& path) {
    std::string out;
    // Collapse "//" and drop "." and "..": a cgroup path never leaves its hierarchy.
    size_t i = 0;
    std::vector<std::string> parts;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string p = path.substr(i, j - i);
        if (p == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!p.empty() && p != ".") {
            parts.push_back(p);
        }
        i = j + 1;
    }
    for (const auto& p : parts) out += "/" + p;
    return out;
}

// The caller's cgroup in hierarchy `h`.
std::string caller_cgroup(const hierarchy& h, const std::vector<procfs::cgroup_membership>& mine) {
    for (const auto& c : mine) {
        if (h.unified) {
            if (c.hierarchy == 0) return c.path;
            continue;
        }
        std::istringstream ss(c.controllers);
        std::string ctl;
        while (std::getline(ss, ctl, ','))
            for (const auto& option : h.controllers)
                if (!ctl.empty() && option == ctl) return c.path;
    }
    return "/";
}

// The first number in a file, or nullopt when it is missing or holds none.
std::optional<uint64_t> read_number(const std::string& path) {
    std::ifstream in(path);
    uint64_t n = 0;
    if (in >> n) return n;
    return std::nullopt;
}

bool is_cpuset(const std::string& dir) { return ::access((dir + "/cpuset.cpus").c_str(), F_OK) == 0; }

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// v1 cpuset refuses tasks while cpus/mems are empty: fill them from the parent, top down.
void inherit_cpuset(const std::string& mount_point, const std::string& rel) {
    std::string dir = mount_point;
    size_t i = 1;
    while (i <= rel.size()) {
        size_t j = rel.find('/', i);
        if (j == std::string::npos) j = rel.size();
        std::string parent = dir;
        dir += "/" + rel.substr(i, j - i);
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
            if (trimmed(read_file(dir + "/" + f)).empty()) write_file(dir + "/" + f, read_file(parent + "/" + f));
        }
        i = j + 1;
    }
}

}  // namespace

std::string systemd_to_cgroupfs(const std::string& cgroups_path, const std::string& id) {
    systemd::unit_name u = systemd::unit_for(cgroups_path, id);
    // "a-b-c.slice" lives in "a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
    std::string path;
    std::string stem = u.slice.substr(0, u.slice.size() - 6);
    if (stem != "-") {
        size_t pos = 0;
        for (;;) {
            size_t dash = stem.find('-', pos);
            path += "/" + stem.substr(0, dash) + ".slice";
            if (dash == std::string::npos) break;
            pos = dash + 1;
        }
    }
    return path + "/" + u.unit;
}

group group::for_container(const std::optional<std::string>& cgroups_path, const std::string& id, bool systemd) {
    std::optional<std::string> effective = cgroups_path;
    if (systemd) effective = systemd_to_cgroupfs(cgroups_path.value_or(""), id);
    return for_container_path(effective, id);
}

std::vector<hierarchy> mounted_hierarchies() {
    std::vector<hierarchy> out;
    std::set<std::string> seen;
    for (const auto& m : procfs::mountinfo()) {
        if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
        if (!seen.insert(m.mount_point).second) continue;
        hierarchy h{m.mount_point, m.root, m.fstype == "cgroup2", {}};
        if (!h.unified) {
            std::istringstream ss(m.super_options);
            std::string option;
            while (std::getline(ss, option, ','))
                if (!option.empty()) h.controllers.push_back(option);
        }
        out.push_back(std::move(h));
    }
    return out;
}

group group::for_container_path(const std::optional<std::string>& cgroups_path, const std::string& id) {
    std::vector<std::string> dirs;
    auto mine = procfs::cgroups();
    std::vector<hierarchy> layout = mounted_hierarchies();
    for (const auto& h : layout) {
        std::string rel;
        if (cgroups_path && !cgroups_path->empty() && (*cgroups_path)[0] == '/') {
            rel = *cgroups_path;
        } else {
            rel = caller_cgroup(h, mine) + "/" + (cgroups_path && !cgroups_path->empty() ? *cgroups_path : id);
        }
        // The mount may show only part of the hierarchy (h.root); paths are relative to that.
        if (h.root != "/" && rel.rfind(h.root, 0) == 0) rel = rel.substr(h.root.size());
        // The root holds every process of the machine: killing "the container's processes" there,
        // or removing it, is not for a runtime to do.
        if (normalize(rel).empty())
            throw error("cgroupsPath " + quote(cgroups_path.value_or("")) + ": names the root of " + h.mount_point +
                        ", which cannot be a container's cgroup");
        dirs.push_back(h.mount_point + normalize(rel));
    }
    return group(std::move(dirs), std::move(layout));
}

const std::vector<hierarchy>& group::layout() const {
    if (!layout_) layout_ = mounted_hierarchies();
    return *layout_;
}

std::map<std::string, std::string> group::v1_dirs() const {
    std::map<std::string, std::string> out;
    for (const auto& h : layout()) {
        if (h.unified) continue;
        for (const auto& dir : dirs_) {
            if (dir.rfind(h.mount_point + "/", 0) != 0) continue;
            for (const auto& option : h.controllers) out[option] = dir;
        }
    }
    return out;
}

std::string group::v2_dir() const {
    for (const auto& h : layout()) {
        if (!h.unified) continue;
        for (const auto& dir : dirs_)
            if (dir.rfind(h.mount_point + "/", 0) == 0) return dir;
    }
    return "";
}

bool has_v1_hierarchies(const std::vector<hierarchy>& layout) {
    for (const auto& h : layout)
        if (!h.unified) return true;
    return false;
}

namespace {

// True when the host offers `controller` where the settings go: a v1 hierarchy of it on v1 and
// hybrid hosts, the root's cgroup.controllers on a pure cgroup2 host.
bool host_offers(const std::vector<hierarchy>& layout, const std::string& controller) {
    bool v1 = has_v1_hierarchies(layout);
    for (const auto& h : layout) {
        if (h.unified != !v1) continue;
        if (!h.unified) {
            for (const auto& option : h.controllers)
                if (option == controller) return true;
            continue;
        }
        std::istringstream available(read_file(h.mount_point + "/cgroup.controllers"));
        std::string name;
        while (available >> name)
            if (name == controller) return true;
    }
    return false;
}

}  // namespace

std::vector<setting> settings_for_host(const nlohmann::json& resources) {
    return settings_for_layout(resources, mounted_hierarchies());
}

std::vector<setting> settings_for_layout(const nlohmann::json& resources, const std::vector<hierarchy>& layout) {
    std::vector<setting> out = has_v1_hierarchies(layout) ? v1_settings(resources) : v2_settings(resources);
    // Refused up front, before a cgroup or a process exists.
    for (const setting& s : out)
        if (s.required && !host_offers(layout, s.controller))
            throw error("linux.resources." + s.controller + ": this host has no " + s.controller +
                        " cgroup controller (see /proc/cgroups)");
    return out;
}

std::vector<setting> group::settings(const nlohmann::json& resources) const {
    return settings_for_layout(resources, layout());
}

namespace {

// On cgroup2 a controller works in a cgroup only once every ancestor delegates it: enable the
// ones the settings need, from the hierarchy's root down to the parent of `dir`.
void enable_v2_controllers(const std::string& mount_point, const std::string& dir, const std::vector<setting>& settings) {
    std::set<std::string> wanted;
    for (const auto& s : settings) wanted.insert(s.controller);
    std::string at = mount_point;
    std::string rel = dir.substr(mount_point.size());
    size_t pos = 1;
    while (pos < rel.size()) {
        std::istringstream available(read_file(at + "/cgroup.controllers"));
        std::string enable, controller;
        while (available >> controller)
            if (wanted.count(controller)) enable += (enable.empty() ? "+" : " +") + controller;
        if (!enable.empty()) write_file(at + "/cgroup.subtree_control", enable);
        size_t next = rel.find('/', pos);
        if (next == std::string::npos) break;
        at = mount_point + rel.substr(0, next);
        pos = next + 1;
    }
}

}  // namespace

void group::check_usage(const std::vector<setting>& resources) const {
    for (const setting& s : resources) {
        if (!s.check_usage) continue;
        bool v1 = s.file == "memory.limit_in_bytes";
        std::string dir = v1 ? v1_dirs()["memory"] : v2_dir();
        if (dir.empty()) continue;
        auto usage = read_number(dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"));
        if (!usage) continue;
        // memory.peak is younger than memory.current (Linux 5.19): without it, usage stands in.
        uint64_t peak = read_number(dir + (v1 ? "/memory.max_usage_in_bytes" : "/memory.peak")).value_or(*usage);
        std::string refusal = memory_usage_refusal(std::stoll(s.value), *usage, peak);
        if (!refusal.empty()) throw error(refusal);
    }
}

void group::apply(const std::vector<setting>& resources) const {
    if (resources.empty()) return;
    check_usage(resources);
    auto dirs = v1_dirs();
    if (dirs.empty()) {
        // A pure cgroup2 host: one directory holds every controller.
        for (const auto& h : layout()) {
            if (!h.unified) continue;
            for (const auto& dir : dirs_) {
                if (dir.rfind(h.mount_point + "/", 0) != 0) continue;
                enable_v2_controllers(h.mount_point, dir, resources);
                apply_v2(dir, resources);
                return;
            }
        }
        return;
    }
    for (const setting& s : resources) {
        auto found = dirs.find(s.controller);
        if (found == dirs.end()) {
            if (s.required)
                throw error("linux.resources." + s.controller + ": this host has no " + s.controller +
                            " cgroup controller (see /proc/cgroups)");
            // A controller this host does not mount is skipped, as the other runtimes do.
            continue;
        }
        const std::string* dir = &found->second;
        auto [file, value] = s.target(*dir);
        std::string path = *dir + "/" + file;
        if (s.optional && ::access(path.c_str(), F_OK) != 0) continue;
        with_context("set " + file + " to " + quote(value), [&] {
            try {
                write_file(path, value);
            } catch (const error& e) {
                // Raising the memory limit above the current memsw limit needs memsw raised first.
                if (e.code() != EINVAL || s.file != "memory.limit_in_bytes") throw;
                for (const setting& swap : resources)
                    if (swap.file == "memory.memsw.limit_in_bytes") write_file(*dir + "/" + swap.file, swap.value);
                write_file(path, value);
            }
        });
    }
}

void group::create_and_join(pid_t pid, const std::vector<setting>& resources) const {
    for (const std::string& dir : dirs_) {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) throw error("create cgroup " + quote(dir) + ": " + ec.message(), ec.value());
        if (is_cpuset(dir)) {
            for (const auto& h : layout())
                if (!h.unified && dir.rfind(h.mount_point + "/", 0) == 0 && is_cpuset(h.mount_point))
                    inherit_cpuset(h.mount_point, dir.substr(h.mount_point.size()));
        }
    }
    // Limits are in place before the process is.
    apply(resources);
    join(pid);
}

void group::join(pid_t pid) const {
    // A move takes a lock that may wait for an RCU grace period even when the process is where
    // it goes already (as after systemd placed it): those hierarchies are skipped.
    std::vector<procfs::cgroup_membership> now = procfs::cgroups(std::to_string(pid));
    for (const std::string& dir : dirs_) {
        bool there = false;
        for (const hierarchy& h : layout()) {
            if (dir != h.mount_point && dir.rfind(h.mount_point + "/", 0) != 0) continue;
            std::string path = normalize((h.root == "/" ? "" : h.root) + dir.substr(h.mount_point.size()));
            there = normalize(caller_cgroup(h, now)) == path;
            break;
        }
        if (there) continue;
        with_context("join cgroup " + quote(dir), [&] { write_file(dir + "/cgroup.procs", std::to_string(pid)); });
    }
}

namespace {

// The processes of the cgroup at `dir` and of every cgroup below it.
void collect_pids(const std::string& dir, std::vector<pid_t>& out) {
    std::ifstream in(dir + "/cgroup.procs");
    pid_t pid;
    while (in >> pid) out.push_back(pid);
    std::error_code ec;
    // A sub-cgroup removed while we look is simply not there any more.
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.is_directory(ec)) collect_pids(entry.path().string(), out);
}

}  // namespace

std::vector<pid_t> group::pids() const {
    std::vector<pid_t> out;
    if (dirs_.empty()) return out;
    // Every hierarchy holds every process; prefer cgroup2 (last on hybrid hosts), else the first.
    std::string dir = dirs_.front();
    for (const auto& d : dirs_)
        if (::access((d + "/cgroup.kill").c_str(), F_OK) == 0 || ::access((d + "/cgroup.events").c_str(), F_OK) == 0) dir = d;
    collect_pids(dir, out);
    return out;
}

void group::signal_all(int sig) const {
    // cgroup2's cgroup.kill takes every process at once, forks in flight included.
    if (sig == SIGKILL) {
        for (const auto& dir : dirs_) {
            if (::access((dir + "/cgroup.kill").c_str(), F_OK) != 0) continue;
            write_file(dir + "/cgroup.kill", "1");
            return;
        }
    }
    // Elsewhere a process could fork between our reading the pids and the signal: frozen, none can.
    bool can_freeze = false;
    for (const auto& dir : dirs_)
        if (::access((dir + "/freezer.state").c_str(), F_OK) == 0 || ::access((dir + "/cgroup.freeze").c_str(), F_OK) == 0)
            can_freeze = true;
    bool was_frozen = can_freeze && frozen();
    if (can_freeze && !was_frozen) {
        try {
            freeze(true);
        } catch (const error& e) {
            log::warning("signal every process: " + std::string(e.what()) + "; signalling unfrozen");
        }
    }
    for (pid_t pid : pids()) ::kill(pid, sig);
    // A frozen process does not act on SIGKILL until it is thawed.
    if (can_freeze && (!was_frozen || sig == SIGKILL)) freeze(false);
}

namespace {

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

void group::freeze(bool frozen) const {
    for (const auto& dir : dirs_) {
        if (::access((dir + "/freezer.state").c_str(), F_OK) == 0) {
            const char* want = frozen ? "FROZEN" : "THAWED";
            // FREEZING may linger while tasks are being stopped: ask again until it settles.
            for (int attempt = 0; attempt < 1000; ++attempt) {
                write_file(dir + "/freezer.state", want);
                if (first_line(dir + "/freezer.state") == want) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            throw error("freeze " + quote(dir) + ": the freezer did not settle");
        }
    }
    for (const auto& dir : dirs_) {
        if (::access((dir + "/cgroup.freeze").c_str(), F_OK) != 0) continue;
        write_file(dir + "/cgroup.freeze", frozen ? "1" : "0");
        for (int attempt = 0; attempt < 1000; ++attempt) {
            if (this->frozen() == frozen) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        throw error("freeze " + quote(dir) + ": cgroup.events never said frozen " + (frozen ? "1" : "0"));
    }
    throw error("no freezer: neither a v1 freezer hierarchy nor cgroup.freeze is available");
}

bool group::frozen() const {
    for (const auto& dir : dirs_)
        if (::access((dir + "/freezer.state").c_str(), F_OK) == 0) return first_line(dir + "/freezer.state") == "FROZEN";
    for (const auto& dir : dirs_) {
        std::ifstream in(dir + "/cgroup.events");
        std::string key, value;
        while (in >> key >> value)
            if (key == "frozen") return value == "1";
    }
    return false;
}

namespace {

// Removes one cgroup directory and every cgroup below it, deepest first (a container that runs
// its own cgroup manager, systemd for one, leaves sub-cgroups behind). The directory is tried
// first: most have no children, and listing one costs more than the rmdir.
void remove_tree(const std::string& dir) {
    bool children_removed = false;
    for (int attempt = 0;; ++attempt) {
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
        if (errno != EBUSY && errno != ENOTEMPTY) throw_errno("remove cgroup", quote(dir));
        if (!children_removed) {
            std::error_code ec;
            for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
                if (entry.is_directory(ec) && !entry.is_symlink(ec)) remove_tree(entry.path().string());
            children_removed = true;
            continue;
        }
        // A process that just died may still be leaving the cgroup: give it a moment.
        if (attempt >= 100) throw_errno("remove cgroup", quote(dir));
        std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 10 ? 1 : 10));
    }
}

}  // namespace

void group::destroy() const {
    for (const std::string& dir : dirs_) remove_tree(dir);
}

}  // namespace pieces::cgroup
