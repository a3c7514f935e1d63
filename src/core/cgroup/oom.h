// Noticing when a cgroup runs out of memory: what `events` reports as {"type":"oom"}.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/unique_fd.h"
#include "core/cgroup/cgroup.h"

namespace pieces::cgroup {

/// The OOM count in a cgroup2 memory.events text: the larger of "oom" (the limit was hit and
/// reclaim failed) and "oom_kill" (a process was killed for it).
uint64_t oom_count(const std::string& memory_events);

/// A pollable watch on a cgroup's OOM events: on v1 an eventfd registered on memory.oom_control
/// through cgroup.event_control; on cgroup2 inotify on memory.events (and cgroup.events, to see
/// the cgroup emptied).
class oom_watch {
public:
    /// Watches the memory controller of `g`'s cgroup; throws when the host has none for it.
    static oom_watch open(const group& g);
    /// Watches a v1 memory cgroup directory.
    static oom_watch open_v1(const std::string& memory_dir);
    /// Watches a cgroup2 directory (it needs memory.events).
    static oom_watch open_v2(const std::string& dir);

    /// Readable when something happened: poll it for POLLIN, then call take().
    int fd() const { return fd_.get(); }
    /// The OOM events since the last call (0 when woken by something else). Afterwards gone()
    /// says whether the cgroup was removed (v1) or has no process left (cgroup2).
    uint64_t take();
    bool gone() const { return gone_; }

private:
    oom_watch(unique_fd fd, unique_fd target, std::string dir, bool v2)
        : fd_(std::move(fd)), target_(std::move(target)), dir_(std::move(dir)), v2_(v2) {}
    unique_fd fd_;      ///< the eventfd (v1) or inotify instance (cgroup2)
    unique_fd target_;  ///< v1: memory.oom_control, held open while registered
    std::string dir_;
    bool v2_ = false;
    bool gone_ = false;
    uint64_t seen_ = 0;  ///< cgroup2: the OOM count already reported
};

}  // namespace pieces::cgroup
