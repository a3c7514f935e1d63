#include "core/container/events.h"

#include <poll.h>

#include <cerrno>
#include <optional>

#include "core/base/error.h"
#include "core/base/pidfd.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/oom.h"
#include "core/cgroup/stats.h"
#include "core/container/internal.h"

namespace pieces::container {

void stream_events(const std::string& root, const std::string& id, std::chrono::milliseconds interval,
                   const std::function<void(const nlohmann::json&)>& emit) {
    saved_state s;
    unique_fd init;
    std::optional<cgroup::oom_watch> oom;
    cgroup::group cg;
    with_context("events of container " + id, [&] {
        // The state directory's lock is let go at once: a stream must not hold off `delete`.
        state_dir dir = state_dir::open(root, id, false);
        s = dir.load();
        if (dir.current_status(s) == status::stopped) throw error("container not running");
        init = unique_fd(pieces::pidfd_open(s.pid, 0));
        if (!init || !init_alive(s)) throw error("container not running");
        cg = cgroup::group(s.cgroup_dirs);
        // A host without a memory controller has no OOM events to tell: statistics alone then.
        if (!cg.v1_dirs().count("memory") && cg.v2_dir().empty()) return;
        oom = cgroup::oom_watch::open(cg);
    });
    auto oom_events = [&] {
        for (uint64_t n = oom->take(); n > 0; --n) emit({{"type", "oom"}, {"id", id}});
    };
    auto next = std::chrono::steady_clock::now();
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (now >= next) {
            emit({{"type", "stats"}, {"id", id}, {"data", cgroup::stats(cg)}});
            next = now + interval;
        }
        pollfd fds[2] = {{init.get(), POLLIN, 0}, {oom ? oom->fd() : -1, POLLIN, 0}};
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
        int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(wait, 60000)));
        if (ready < 0 && errno != EINTR) throw_errno("poll");
        if (ready <= 0) continue;
        if (fds[1].revents & POLLIN) {
            oom_events();
            if (oom->gone()) return;
        }
        if (fds[0].revents & POLLIN) {
            // The init is gone; an OOM that killed it may still be on its way.
            if (oom) {
                pollfd last{oom->fd(), POLLIN, 0};
                if (::poll(&last, 1, 0) > 0) oom_events();
            }
            return;
        }
    }
}

}  // namespace pieces::container
