#include <fcntl.h>
#include <poll.h>
#include "core/base/pidfd.h"
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/container/internal.h"
#include "core/linux/hooks.h"

namespace pieces::container {

void start_locked(state_dir& dir, const saved_state& s) {
    switch (dir.current_status(s)) {
        case status::created: break;
        case status::stopped: throw error("cannot start a container that has stopped");
        default: throw error("cannot start an already running container");
    }
    unique_fd pidfd(pieces::pidfd_open(s.pid, 0));
    if (!pidfd) throw_errno("pidfd_open", "init " + std::to_string(s.pid));
    // Non-blocking open returns at once; the init's blocked open for writing then completes
    // and it writes one byte. Watching the pidfd too means a dead init cannot hang us.
    unique_fd fifo = open_path(dir.fifo_path(), O_RDONLY | O_NONBLOCK);
    for (;;) {
        pollfd fds[2] = {{fifo.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll exec fifo");
        }
        if (fds[0].revents & POLLIN) {
            char byte = 0;
            if (::read(fifo.get(), &byte, 1) == 1) break;
        }
        if (fds[1].revents & POLLIN) throw error("container init exited before it could start");
    }
    if (::unlink(dir.fifo_path().c_str()) < 0) throw_errno("unlink", quote(dir.fifo_path()));
    std::string st = hook_state(s.id, "running", s.pid, s.bundle, s.annotations).dump();
    linux_::run_hooks_warn(spec::parse_hooks(s.hooks.value("poststart", nlohmann::json::array()), "hooks.poststart"), st,
                           "poststart");
}

void start(const std::string& root, const std::string& id) {
    with_context("start container " + id, [&] {
        state_dir dir = state_dir::open(root, id, true);
        saved_state s = dir.load();
        start_locked(dir, s);
    });
}

}  // namespace pieces::container
