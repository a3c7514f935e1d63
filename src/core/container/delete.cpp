#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include "core/base/pidfd.h"

#include <cerrno>

#include "core/base/error.h"
#include "core/base/log.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/systemd.h"
#include "core/container/internal.h"
#include "core/linux/hooks.h"

namespace pieces::container {
namespace {

// Kills the init (and everything else in the cgroup) and waits for the init to be gone.
void kill_and_wait(const saved_state& s) {
    cgroup::group cg(s.cgroup_dirs);
    unique_fd pidfd(pieces::pidfd_open(s.pid, 0));
    // The cgroup first (frozen on v1, so that nothing forks past the signal), then the init in
    // case it is somewhere else.
    cg.signal_all(SIGKILL);
    if (pidfd && init_alive(s)) pieces::pidfd_send_signal(pidfd.get(), SIGKILL);
    if (pidfd) {
        pollfd p{pidfd.get(), POLLIN, 0};
        while (::poll(&p, 1, 10000) < 0 && errno == EINTR) {
        }
    }
}

// systemd stops a scope once it is empty and removes its cgroup: with the directory of the
// hierarchy it tracks units in gone, there is nothing to stop.
bool systemd_still_holds(const cgroup::group& cg) {
    std::string dir = cgroup::systemd::tracked_dir(cg);
    return dir.empty() || ::access(dir.c_str(), F_OK) == 0;
}

}  // namespace

void remove_locked(state_dir& dir, const saved_state& s) {
    cgroup::group cg(s.cgroup_dirs);
    // Stragglers (an init that exited leaves its children behind without a pid namespace).
    if (!cg.pids().empty()) {
        cg.signal_all(SIGKILL);
    }
    std::string st = hook_state(s.id, "stopped", 0, s.bundle, s.annotations).dump();
    linux_::run_hooks_warn(spec::parse_hooks(s.hooks.value("poststop", nlohmann::json::array()), "hooks.poststop"), st,
                           "poststop");
    if (!s.systemd_unit.empty() && systemd_still_holds(cg)) {
        // What systemd does not answer for is removed from cgroupfs below all the same.
        try {
            cgroup::systemd::manager::connection().stop(s.systemd_unit);
        } catch (const std::exception& e) {
            log::warning(e.what());
        }
    }
    cg.destroy();
    dir.remove();
}

void remove(const std::string& root, const std::string& id, bool force) {
    with_context("delete container " + id, [&] {
        state_dir dir;
        try {
            dir = state_dir::open(root, id, true);
        } catch (const error& e) {
            // Forcing the delete of what is already gone succeeds, as clients retrying expect.
            if (force && e.code() == ENOENT) return;
            throw;
        }
        saved_state s = dir.load();
        switch (dir.current_status(s)) {
            case status::stopped: break;
            case status::created: kill_and_wait(s); break;
            default:
                if (!force)
                    throw error("cannot delete container " + id + " that is not stopped: " +
                                status_name(dir.current_status(s)));
                kill_and_wait(s);
        }
        remove_locked(dir, s);
    });
}

}  // namespace pieces::container
