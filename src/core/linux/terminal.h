// The container's terminal: a pty made inside, its master sent to the console socket.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "core/base/unique_fd.h"

namespace pieces::linux_ {

/// Opens a new pty from /dev/ptmx (inside the container), sizes it, sends the master over
/// `socket` with SCM_RIGHTS, and makes the slave our controlling terminal and stdio. With
/// `bind_on_console` (the init's terminal) the slave is also bound over /dev/console.
void setup_console(borrowed_fd socket, std::optional<std::pair<unsigned, unsigned>> size, bool bind_on_console);

}  // namespace pieces::linux_
