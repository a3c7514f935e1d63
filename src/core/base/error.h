// Errors: exceptions that carry the failing call, its subject and errno.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pieces {

/// An error with a message and the errno that caused it (0 when none).
class error : public std::runtime_error {
public:
    explicit error(const std::string& msg, int err = 0) : std::runtime_error(msg), errno_(err) {}
    int code() const { return errno_; }

private:
    int errno_;
};

/// Builds "CALL SUBJECT: strerror(err)" for a failed system call.
std::string describe_syscall(std::string_view call, std::string_view subject, int err);

/// Throws an error for a failed call, reading errno.
[[noreturn]] void throw_errno(std::string_view call, std::string_view subject = {});
/// Throws an error for a failed call with an explicit errno.
[[noreturn]] void throw_errno_code(int err, std::string_view call, std::string_view subject = {});

/// Throws `error` built from the arguments when `cond` is false.
#define PIECES_CHECK_SYS(expr, call, subject)             \
    do {                                                  \
        if ((expr) < 0) ::pieces::throw_errno(call, subject); \
    } while (0)

/// Adds context in front of any error thrown by `fn`: "context: inner message".
template <typename Fn>
decltype(auto) with_context(std::string_view context, Fn&& fn) {
    try {
        return fn();
    } catch (const error& e) {
        throw error(std::string(context) + ": " + e.what(), e.code());
    } catch (const std::exception& e) {
        throw error(std::string(context) + ": " + e.what());
    }
}

}  // namespace pieces
