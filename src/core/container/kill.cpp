#include <signal.h>
#include "core/base/pidfd.h"

#include "core/base/error.h"
#include "core/cgroup/cgroup.h"
#include "core/container/internal.h"

namespace pieces::container {

void kill(const std::string& root, const std::string& id, int sig, bool all) {
    with_context("kill container " + id, [&] {
        state_dir dir = state_dir::open(root, id, false);
        saved_state s = dir.load();
        status st = dir.current_status(s);
        if (all) {
            cgroup::group(s.cgroup_dirs).signal_all(sig);
            return;
        }
        if (st == status::stopped) throw error("container not running");
        // Through a pidfd, so a pid reused since the check cannot be hit.
        unique_fd pidfd(pieces::pidfd_open(s.pid, 0));
        if (!pidfd || !init_alive(s)) throw error("container not running");
        if (pieces::pidfd_send_signal(pidfd.get(), sig) < 0) throw_errno("signal init", std::to_string(s.pid));
    });
}

}  // namespace pieces::container
