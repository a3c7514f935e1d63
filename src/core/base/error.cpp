#include "core/base/error.h"

#include <cerrno>
#include <cstring>

namespace pieces {

std::string describe_syscall(std::string_view call, std::string_view subject, int err) {
    std::string msg(call);
    if (!subject.empty()) {
        msg += ' ';
        msg += subject;
    }
    msg += ": ";
    msg += std::strerror(err);
    return msg;
}

void throw_errno(std::string_view call, std::string_view subject) {
    throw_errno_code(errno, call, subject);
}

void throw_errno_code(int err, std::string_view call, std::string_view subject) {
    throw error(describe_syscall(call, subject, err), err);
}

}  // namespace pieces
