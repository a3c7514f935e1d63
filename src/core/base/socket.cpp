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

unique_fd receive_fd(borrowed_fd socket, std::string_view what) {
    char data[256];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    while (::recvmsg(socket.get(), &mh, MSG_CMSG_CLOEXEC) < 0) {
        if (errno != EINTR) throw_errno("receive", what);
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return unique_fd(fd);
    }
    throw error(std::string(what) + ": no descriptor came");
}

}  // namespace pieces
