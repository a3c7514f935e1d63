// The typed parent/child channel used while a container is created.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/base/unique_fd.h"

namespace pieces::proc {

/// What a message on the channel means. Each step of creation is one exchange.
enum class msg : uint32_t {
    error = 1,            ///< child → parent: {errno, message}; creation failed
    need_id_maps,         ///< child → parent: write my uid_map/gid_map now
    id_maps_done,         ///< parent → child: mappings written
    init_pid,             ///< child → parent: the init's pid (payload: decimal)
    go,                   ///< parent → child: start setting up; payload: state JSON for hooks
    cgroup_joined,        ///< parent → child: the init is in its cgroups (joined while it mounts)
    run_runtime_hooks,    ///< child → parent: mounts done, run prestart/createRuntime hooks
    runtime_hooks_done,   ///< parent → child: hooks ran
    seccomp_listener,     ///< child → parent: the seccomp notify fd rides along (SCM_RIGHTS)
    ready,                ///< child → parent: set up, parked on the exec fifo
};

/// A human name for a message type, for "expected X, got Y".
const char* msg_name(msg m);

/// One message: a type, an errno (for `error`) and a payload.
struct message {
    msg type{};
    int32_t err = 0;
    std::string payload;
};

/// One end of a SOCK_SEQPACKET socketpair; each send is one message.
class channel {
public:
    channel() = default;
    explicit channel(unique_fd fd) : fd_(std::move(fd)) {}

    /// Makes a connected pair (parent end, child end), both close-on-exec.
    static std::pair<channel, channel> make_pair();

    void send(msg type, std::string_view payload = {}, int32_t err = 0);
    /// Sends a message with a file descriptor attached.
    void send_with_fd(msg type, borrowed_fd fd);
    /// Receives one message; throws when the peer has gone away. A descriptor that came with
    /// it is stored in `fd` (or closed when `fd` is null).
    message receive(unique_fd* fd = nullptr);
    /// Like receive, but returns nullopt when the peer closed its end (exec'd or exited).
    std::optional<message> try_receive(unique_fd* fd = nullptr);
    /// Receives one message of `type`; a child's `error` is rethrown as an error with its errno,
    /// anything else fails with "expected X, got Y".
    message expect(msg type);

    int fd() const { return fd_.get(); }
    void close() { fd_.reset(); }

private:
    unique_fd fd_;
};

/// Encodes a message as bytes (header then payload); exposed for tests.
std::string encode(const message& m);
/// Decodes bytes made by encode; throws on a short or inconsistent frame.
message decode(std::string_view bytes);

}  // namespace pieces::proc
