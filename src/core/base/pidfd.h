// pidfd system calls (glibc 2.36's <sys/pidfd.h> lacks C linkage in C++).
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace pieces {

/// pidfd_open(2): a descriptor that refers to one process, readable once it exits.
inline int pidfd_open(pid_t pid, unsigned flags = 0) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

/// pidfd_send_signal(2): signals exactly the process the descriptor refers to.
inline int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

}  // namespace pieces
