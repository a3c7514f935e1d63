// Unix sockets: connecting by path and passing descriptors with SCM_RIGHTS.
#pragma once

#include <string>
#include <string_view>

#include "core/base/unique_fd.h"

namespace pieces {

/// Connects to a unix stream socket by path.
unique_fd connect_unix_socket(const std::string& path);

/// Sends `data` with `fd` attached (SCM_RIGHTS) in one message.
void send_with_fd(borrowed_fd socket, borrowed_fd fd, std::string_view data, std::string_view what);

/// Receives one message into `buf` (returns its length); a descriptor that came with it goes
/// to `fd`, or is closed when `fd` is null.
size_t receive_with_fd(borrowed_fd socket, char* buf, size_t len, unique_fd* fd, std::string_view what);

/// Receives one message and the descriptor attached to it (SCM_RIGHTS); throws if none came.
unique_fd receive_fd(borrowed_fd socket, std::string_view what);

}  // namespace pieces
