#include "core/base/socket.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces {

unique_fd connect_unix_socket(const std::string& path) {
    unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw error("socket path too long: " + quote(path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        throw_errno("connect to", quote(path));
    return sock;
}

void send_with_fd(borrowed_fd socket, borrowed_fd fd, std::string_view data, std::string_view what) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int value = fd.get();
    std::memcpy(CMSG_DATA(c), &value, sizeof value);
    while (::sendmsg(socket.get(), &mh, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) throw_errno("send", what);
    }
}

size_t receive_with_fd(borrowed_fd socket, char* buf, size_t len, unique_fd* fd, std::string_view what) {
    iovec iov{buf, len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = ::recvmsg(socket.get(), &mh, MSG_CMSG_CLOEXEC)) < 0) {
        if (errno != EINTR) throw_errno("receive", what);
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        unique_fd owned(got);  // closed here unless the caller wants it
        if (fd) *fd = std::move(owned);
    }
    return static_cast<size_t>(n);
}

unique_fd receive_fd(borrowed_fd socket, std::string_view what) {
    char data[256];
    unique_fd fd;
    receive_with_fd(socket, data, sizeof data, &fd, what);
    if (!fd) throw error(std::string(what) + ": no descriptor came");
    return fd;
}

}  // namespace pieces
