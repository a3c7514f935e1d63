// The container's terminal: a pty made inside, its master sent to the console socket.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "core/base/unique_fd.h"

namespace pieces::linux_ {

/// Connects to a unix stream socket (--console-socket, a seccomp listener).
unique_fd connect_unix_socket(const std::string& path);

/// Opens a new pty from /dev/ptmx (inside the container), sizes it, sends the master over
/// `socket` with SCM_RIGHTS, and makes the slave our controlling terminal and stdio.
void setup_console(borrowed_fd socket, std::optional<std::pair<unsigned, unsigned>> size);

/// Sends `fd` over a unix socket with SCM_RIGHTS, naming it `name`.
void send_fd(borrowed_fd socket, borrowed_fd fd, const std::string& name);

}  // namespace pieces::linux_
