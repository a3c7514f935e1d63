#include "core/base/signals.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <tuple>
#include <utility>

#include "core/base/error.h"

namespace pieces {
namespace {

constexpr std::array<std::pair<const char*, int>, 31> signal_names = {{
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},   {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},   {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"SYS", SIGSYS},
}};

bool all_digits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

int parse_signal(const std::string& text) {
    if (all_digits(text)) {
        int n = std::stoi(text);
        if (n <= 0 || n > SIGRTMAX) throw error("invalid signal " + text);
        return n;
    }
    std::string name = text;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    if (name.rfind("SIG", 0) == 0) name = name.substr(3);
    for (const auto& [n, sig] : signal_names)
        if (name == n) return sig;
    for (const auto& [prefix, base, sign] : {std::tuple{"RTMIN", SIGRTMIN, 1}, std::tuple{"RTMAX", SIGRTMAX, -1}}) {
        std::string p = prefix;
        if (name == p) return base;
        if (name.rfind(p + (sign > 0 ? "+" : "-"), 0) == 0 && all_digits(name.substr(p.size() + 1))) {
            int sig = base + sign * std::stoi(name.substr(p.size() + 1));
            if (sig >= SIGRTMIN && sig <= SIGRTMAX) return sig;
        }
    }
    throw error("unknown signal \"" + text + "\"");
}

std::string signal_name(int sig) {
    for (const auto& [n, number] : signal_names)
        if (number == sig && std::string(n) != "IOT") return std::string("SIG") + n;
    if (sig == SIGRTMIN) return "SIGRTMIN";
    if (sig > SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
    return std::to_string(sig);
}

}  // namespace pieces
