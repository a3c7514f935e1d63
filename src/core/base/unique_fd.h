// Owning and borrowed file descriptors.
#pragma once

#include <unistd.h>

#include <utility>

namespace pieces {

/// A non-owning file descriptor, for parameters.
class borrowed_fd {
public:
    constexpr borrowed_fd(int fd) : fd_(fd) {}  // NOLINT: implicit by design, like int
    constexpr int get() const { return fd_; }

private:
    int fd_;
};

/// A move-only owner of a file descriptor; closes it once, never retrying on EINTR.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        reset(o.release());
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    operator borrowed_fd() const { return borrowed_fd(fd_); }  // NOLINT: borrowing is implicit

    /// Gives up ownership without closing.
    int release() { return std::exchange(fd_, -1); }
    /// Closes the current descriptor (if any) and takes `fd`.
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace pieces
