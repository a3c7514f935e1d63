#include "core/proc/channel.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/base/error.h"
#include "core/base/socket.h"

namespace pieces::proc {
namespace {

struct header {
    uint32_t type;
    int32_t err;
    uint32_t length;
};

}  // namespace

const char* msg_name(msg m) {
    switch (m) {
        case msg::error: return "error";
        case msg::need_id_maps: return "need-id-maps";
        case msg::id_maps_done: return "id-maps-done";
        case msg::init_pid: return "init-pid";
        case msg::go: return "go";
        case msg::cgroup_joined: return "cgroup-joined";
        case msg::run_runtime_hooks: return "run-runtime-hooks";
        case msg::runtime_hooks_done: return "runtime-hooks-done";
        case msg::seccomp_listener: return "seccomp-listener";
        case msg::ready: return "ready";
    }
    return "unknown";
}

std::string encode(const message& m) {
    header h{static_cast<uint32_t>(m.type), m.err, static_cast<uint32_t>(m.payload.size())};
    std::string out(sizeof h, '\0');
    std::memcpy(out.data(), &h, sizeof h);
    out += m.payload;
    return out;
}

message decode(std::string_view bytes) {
    header h{};
    if (bytes.size() < sizeof h) throw error("channel: short message (" + std::to_string(bytes.size()) + " bytes)");
    std::memcpy(&h, bytes.data(), sizeof h);
    if (bytes.size() - sizeof h != h.length)
        throw error("channel: message says " + std::to_string(h.length) + " bytes of payload, carries " +
                    std::to_string(bytes.size() - sizeof h));
    return message{static_cast<msg>(h.type), h.err, std::string(bytes.substr(sizeof h))};
}

std::pair<channel, channel> channel::make_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) throw_errno("socketpair");
    return {channel(unique_fd(fds[0])), channel(unique_fd(fds[1]))};
}

void channel::send(msg type, std::string_view payload, int32_t err) {
    std::string bytes = encode(message{type, err, std::string(payload)});
    for (;;) {
        ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) return;
        if (errno == EINTR) continue;
        int failed = errno;
        // The other side is gone: what it said before going (an error, most likely) explains
        // why better than "broken pipe" does. Its queue can still be read: no wait.
        if (failed == EPIPE || failed == ECONNRESET) {
            std::optional<message> last;
            try {
                last = try_receive();
            } catch (const error&) {
            }
            if (last && last->type == msg::error) throw error(last->payload, last->err);
        }
        throw_errno_code(failed, "send", std::string("message ") + msg_name(type));
    }
}

void channel::send_with_fd(msg type, borrowed_fd fd) {
    pieces::send_with_fd(fd_, fd, encode(message{type, 0, {}}), std::string("message ") + msg_name(type));
}

message channel::receive(unique_fd* fd) {
    std::optional<message> m = try_receive(fd);
    if (!m) throw error("channel: the other side exited without a word");
    return *m;
}

std::optional<message> channel::try_receive(unique_fd* fd) {
    for (;;) {
        ssize_t len = ::recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
        if (len < 0) {
            // ECONNRESET: the other side went with messages of ours unread. That is reported
            // once; what it sent before going is still queued for the next call.
            if (errno == EINTR || errno == ECONNRESET) continue;
            throw_errno("recv");
        }
        if (len == 0) return std::nullopt;
        std::string buf(static_cast<size_t>(len), '\0');
        size_t n = receive_with_fd(fd_, buf.data(), buf.size(), fd, "channel message");
        buf.resize(n);
        return decode(buf);
    }
}

message channel::expect(msg type) {
    message m = receive();
    if (m.type == type) return m;
    if (m.type == msg::error) throw error(m.payload, m.err);
    throw error(std::string("channel: expected ") + msg_name(type) + ", got " + msg_name(m.type));
}

}  // namespace pieces::proc
