#include "core/image/run_options.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/signals.h"
#include "core/base/units.h"
#include "core/spec/config.h"

namespace pieces::image {
namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

bool digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }); }

// "1.25" as an integer part and up to `scale` decimal digits: {1, 250...}; nullopt when not a plain decimal.
std::optional<std::pair<int64_t, int64_t>> decimal(const std::string& text, int scale) {
    size_t dot = text.find('.');
    std::string whole = text.substr(0, dot), frac = dot == std::string::npos ? "" : text.substr(dot + 1);
    if (!digits(whole) || (dot != std::string::npos && !digits(frac)) || whole.size() > 12) return std::nullopt;
    if (static_cast<int>(frac.size()) > scale) return std::nullopt;
    frac.append(static_cast<size_t>(scale) - frac.size(), '0');
    return std::pair<int64_t, int64_t>{std::stoll(whole), scale == 0 ? 0 : std::stoll(frac)};
}

// Each entry of an env or label file with its line number: leading blanks and a trailing CR
// dropped, blank lines and # comments skipped.
void for_each_entry_line(const std::string& text, const std::function<void(const std::string&, int)>& fn) {
    std::istringstream lines(text);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        line.erase(0, line.find_first_not_of(" \t\v\f"));
        if (!line.empty() && line[0] != '#') fn(line, number);
    }
}

std::string bad(const std::string& flag, const std::string& text, const std::string& why) {
    return flag + " " + quote(text) + ": " + why;
}

// A byte count as the flags take it back: "64m" when a unit divides it, else the bytes.
std::string size_text(int64_t bytes) {
    const char* units = "kmgtp";
    int unit = -1;
    while (unit < 4 && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++unit;
    }
    return std::to_string(bytes) + (unit < 0 ? "" : std::string(1, units[unit]));
}

}  // namespace

int64_t parse_size(const std::string& text, const std::string& flag) {
    if (auto bytes = parse_byte_size(text)) return *bytes;
    throw error(bad(flag, text, "not a size (a number of bytes, or with a unit: 512k, 64m, 1.5g)"));
}

int64_t parse_cpus(const std::string& text, int host_cpus) {
    std::string range = "a number of CPUs from 0.01 to " + std::to_string(host_cpus) + " (this host has " + std::to_string(host_cpus) + ")";
    auto number = decimal(text, 9);
    if (!number) throw error(bad("--cpus", text, "expected " + range));
    int64_t nano = number->first * 1000000000 + number->second;
    if (nano < 10000000 || nano > static_cast<int64_t>(host_cpus) * 1000000000) throw error(bad("--cpus", text, "expected " + range));
    return nano * 100000 / 1000000000;
}

void check_cpuset(const std::string& text, const std::string& flag) {
    std::istringstream parts(text);
    std::string part;
    bool any = false;
    while (std::getline(parts, part, ',')) {
        size_t dash = part.find('-');
        std::string a = part.substr(0, dash), b = dash == std::string::npos ? a : part.substr(dash + 1);
        if (!digits(a) || !digits(b) || a.size() > 6 || b.size() > 6 || std::stol(a) > std::stol(b))
            throw error(bad(flag, text, "expected a list such as 0-3,5"));
        any = true;
    }
    if (!any || text.back() == ',') throw error(bad(flag, text, "expected a list such as 0-3,5"));
}

int parse_stop_signal(const std::string& text, const std::string& flag) {
    try {
        int sig = parse_signal(upper(text));
        if (sig > 0) return sig;
    } catch (const error&) {
    }
    throw error(bad(flag, text, "not a signal (a name such as SIGTERM or USR1, or a number)"));
}

std::vector<std::string> parse_env_file(const std::string& text, const std::function<const char*(const std::string&)>& lookup,
                                        const std::string& file) {
    std::vector<std::string> out;
    for_each_entry_line(text, [&](const std::string& line, int number) {
        size_t eq = line.find('=');
        std::string key = line.substr(0, eq);
        std::string where = "--env-file " + quote(file) + " line " + std::to_string(number) + ": ";
        if (key.empty()) throw error(where + "no variable name before '='");
        if (key.find_first_of(" \t") != std::string::npos) throw error(where + "the name " + quote(key) + " contains blanks");
        if (eq != std::string::npos) out.push_back(line);
        else if (const char* v = lookup(key)) out.push_back(key + "=" + v);
    });
    return out;
}

std::pair<std::string, std::string> parse_label(const std::string& text, const std::string& flag) {
    size_t eq = text.find('=');
    std::string key = text.substr(0, eq);
    if (key.empty()) throw error(bad(flag, text, "no label name before '='"));
    if (key.find_first_of(" \t\n") != std::string::npos) throw error(bad(flag, text, "the label name contains blanks"));
    return {key, eq == std::string::npos ? "" : text.substr(eq + 1)};
}

std::vector<std::pair<std::string, std::string>> parse_label_file(const std::string& text, const std::string& file) {
    std::vector<std::pair<std::string, std::string>> out;
    for_each_entry_line(text, [&](const std::string& line, int number) {
        out.push_back(parse_label(line, "--label-file " + quote(file) + " line " + std::to_string(number)));
    });
    return out;
}

std::string capability_flag(const std::string& text, const std::string& flag) {
    std::string name = upper(text);
    if (name == "ALL") return name;
    if (name.rfind("CAP_", 0) != 0) name = "CAP_" + name;
    if (spec::capability_from_name(name) < 0) throw error(bad(flag, text, "unknown capability"));
    return name;
}

std::vector<std::string> effective_capabilities(const std::vector<std::string>& base, const std::vector<std::string>& all,
                                                const std::vector<std::string>& add, const std::vector<std::string>& drop) {
    auto has = [](const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); };
    std::vector<std::string> out;
    auto keep = [&](const std::string& c) {
        if (c != "ALL" && !has(out, c)) out.push_back(c);
    };
    if (has(add, "ALL")) {
        for (const auto& c : all)
            if (!has(drop, c)) keep(c);
    } else if (has(drop, "ALL")) {
        for (const auto& c : add) keep(c);
    } else {
        for (const auto& c : base)
            if (!has(drop, c)) keep(c);
        for (const auto& c : add) keep(c);
    }
    return out;
}

tmpfs_mount tmpfs_mount::parse(const std::string& text) {
    tmpfs_mount m;
    size_t colon = text.find(':');
    m.destination = text.substr(0, colon);
    if (m.destination.empty() || m.destination[0] != '/') throw error(bad("--tmpfs", text, "expected an absolute PATH[:OPTIONS]"));
    if (m.destination != "/" && m.destination.back() == '/') m.destination.pop_back();
    if (m.destination == "/") throw error(bad("--tmpfs", text, "cannot mount over /"));
    m.options = {"nosuid", "nodev", "noexec"};
    if (colon != std::string::npos) {
        std::istringstream opts(text.substr(colon + 1));
        std::string o;
        while (std::getline(opts, o, ','))
            if (!o.empty()) m.options.push_back(o);
    }
    return m;
}

void resource_limits::check() const {
    constexpr int64_t minimum_memory = 6 * 1024 * 1024;
    if (memory && *memory < minimum_memory) throw error(bad("--memory", size_text(*memory), "the minimum is 6m"));
    if (memory_swap && !memory) throw error("--memory-swap needs --memory: it is the total of memory and swap");
    if (memory_swap && *memory_swap != -1 && *memory_swap < *memory)
        throw error(bad("--memory-swap", size_text(*memory_swap), "below --memory " + size_text(*memory) + ": it is memory and swap together"));
    if (memory && memory_reservation && *memory_reservation > *memory)
        throw error(bad("--memory-reservation", size_text(*memory_reservation), "above --memory " + size_text(*memory)));
}

void resource_limits::apply(nlohmann::json& resources) const {
    if (memory) {
        resources["memory"]["limit"] = *memory;
        resources["memory"]["swap"] = memory_swap ? *memory_swap : 2 * *memory;
    }
    if (memory_reservation) resources["memory"]["reservation"] = *memory_reservation;
    if (cpu_quota) {
        resources["cpu"]["quota"] = *cpu_quota;
        resources["cpu"]["period"] = 100000;
    }
    if (cpu_shares) resources["cpu"]["shares"] = *cpu_shares;
    if (!cpuset_cpus.empty()) resources["cpu"]["cpus"] = cpuset_cpus;
    if (!cpuset_mems.empty()) resources["cpu"]["mems"] = cpuset_mems;
    if (pids_limit) resources["pids"]["limit"] = *pids_limit;
}

bool resource_limits::empty() const {
    return !memory && !memory_swap && !memory_reservation && !cpu_quota && !cpu_shares && !pids_limit && cpuset_cpus.empty() &&
           cpuset_mems.empty();
}

}  // namespace pieces::image
