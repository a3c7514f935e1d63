#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/container/internal.h"
#include "core/linux/hooks.h"

namespace pieces::container {
namespace {

// After the go byte the init runs startContainer hooks and execs. Its fifo fd closes on exec,
// or on exit, which is when our write end reports POLLERR (no readers left). On failure the
// init leaves its error in the fifo, which our open write end keeps alive for us to read.
void wait_for_exec(const std::string& path, borrowed_fd writer) {
    pollfd p{writer.get(), 0, 0};
    while (::poll(&p, 1, -1) < 0) {
        if (errno != EINTR) throw_errno("poll exec fifo");
    }
    unique_fd reader(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!reader) throw_errno("open", quote(path));
    char buf[4096];
    ssize_t n = ::read(reader.get(), buf, sizeof buf);
    if (n <= 0) return;
    std::string msg(buf, static_cast<size_t>(n));
    // Our own byte still there means the init died before it read it.
    if (msg == "0") throw error("container init exited before it could start");
    throw error(msg);
}

}  // namespace

void start_locked(state_dir& dir, const saved_state& s) {
    switch (dir.current_status(s)) {
        case status::created: break;
        case status::stopped: throw error("cannot start a container that has stopped");
        default: throw error("cannot start an already running container");
    }
    // The init holds the fifo open for reading while it waits: with nobody reading, the init is
    // gone and the open fails with ENXIO instead of blocking.
    int fd = ::open(dir.fifo_path().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENXIO) throw error("container init exited before it could start");
        throw_errno("open", quote(dir.fifo_path()));
    }
    unique_fd fifo(fd);
    write_all(fifo, "0", "exec fifo");
    wait_for_exec(dir.fifo_path(), fifo);
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
