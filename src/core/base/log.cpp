#include "core/base/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace pieces::log {
namespace {

struct sink {
    int fd = -1;  // the --log file, or -1
    format fmt = format::text;
    bool debug = false;
};

sink& the_sink() {
    static sink s;
    return s;
}

void emit(std::string_view level, std::string_view msg) {
    sink& s = the_sink();
    std::string line;
    if (s.fmt == format::json) {
        line = nlohmann::json{{"level", level}, {"msg", msg}, {"time", rfc3339_now()}}.dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
        line = rfc3339_now() + " " + std::string(level) + ": " + std::string(msg);
    }
    line += '\n';
    if (s.fd >= 0) {
        ssize_t n = ::write(s.fd, line.data(), line.size());
        (void)n;
    }
}

}  // namespace

void configure(const std::string& file, format fmt, bool debug) {
    sink& s = the_sink();
    s.fmt = fmt;
    s.debug = debug;
    if (!file.empty()) {
        s.fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
}

void error(std::string_view msg) {
    emit("error", msg);
    // Clients read stderr as well as the log: one line, runc's shape.
    std::string line = std::string(msg) + "\n";
    ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    (void)n;
}

void warning(std::string_view msg) {
    emit("warning", msg);
    if (the_sink().fd < 0) {
        std::string line = "warning: " + std::string(msg) + "\n";
        ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
        (void)n;
    }
}

void debug(std::string_view msg) {
    if (the_sink().debug) emit("debug", msg);
}

bool debugging() { return the_sink().debug; }

std::string rfc3339_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
    return buf;
}

}  // namespace pieces::log
