#include "core/cgroup/oom.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::cgroup {

uint64_t oom_count(const std::string& memory_events) {
    std::istringstream in(memory_events);
    std::string key;
    uint64_t value = 0, oom = 0, kills = 0;
    while (in >> key >> value) {
        if (key == "oom") oom = value;
        if (key == "oom_kill") kills = value;
    }
    return std::max(oom, kills);
}

oom_watch oom_watch::open(const group& g) {
    auto v1 = g.v1_dirs();
    if (auto it = v1.find("memory"); it != v1.end()) return open_v1(it->second);
    std::string dir = g.v2_dir();
    if (!dir.empty() && ::access((dir + "/memory.events").c_str(), F_OK) == 0) return open_v2(dir);
    throw error("watch OOM events: the container's cgroup has no memory controller");
}

oom_watch oom_watch::open_v1(const std::string& memory_dir) {
    return with_context("watch OOM events of " + quote(memory_dir), [&] {
        unique_fd control = open_path(memory_dir + "/memory.oom_control", O_RDONLY | O_CLOEXEC);
        unique_fd event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!event) throw_errno("eventfd");
        // "<eventfd> <file>": the kernel signals the eventfd on each OOM (and once when the cgroup goes).
        write_file(memory_dir + "/cgroup.event_control",
                   std::to_string(event.get()) + " " + std::to_string(control.get()));
        return oom_watch(std::move(event), std::move(control), memory_dir, false);
    });
}

oom_watch oom_watch::open_v2(const std::string& dir) {
    return with_context("watch OOM events of " + quote(dir), [&] {
        unique_fd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!in) throw_errno("inotify_init1");
        for (const char* file : {"memory.events", "cgroup.events"}) {
            std::string path = dir + "/" + file;
            if (::inotify_add_watch(in.get(), path.c_str(), IN_MODIFY) < 0) throw_errno("inotify_add_watch", quote(path));
        }
        oom_watch w(std::move(in), unique_fd(), dir, true);
        // Only what happens from now on is news.
        w.seen_ = oom_count(read_file(dir + "/memory.events"));
        return w;
    });
}

uint64_t oom_watch::take() {
    if (!v2_) {
        uint64_t count = 0;
        if (::read(fd_.get(), &count, sizeof count) != static_cast<ssize_t>(sizeof count)) return 0;
        // The removal of the cgroup signals the eventfd once too.
        if (::access((dir_ + "/cgroup.event_control").c_str(), F_OK) != 0) {
            gone_ = true;
            return count > 0 ? count - 1 : 0;
        }
        return count;
    }
    char buf[4096];
    while (::read(fd_.get(), buf, sizeof buf) > 0) {
    }
    uint64_t now = seen_;
    try {
        now = oom_count(read_file(dir_ + "/memory.events"));
        std::istringstream events(read_file(dir_ + "/cgroup.events"));
        std::string key, value;
        while (events >> key >> value)
            if (key == "populated" && value == "0") gone_ = true;
    } catch (const error&) {
        gone_ = true;  // the cgroup was removed
    }
    uint64_t fresh = now > seen_ ? now - seen_ : 0;
    seen_ = std::max(seen_, now);
    return fresh;
}

}  // namespace pieces::cgroup
