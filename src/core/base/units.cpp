#include "core/base/units.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<int64_t> parse_byte_size(std::string_view text) {
    size_t end = 0;
    while (end < text.size() && (is_digit(text[end]) || text[end] == '.')) ++end;
    std::string_view number = text.substr(0, end);
    size_t dot = number.find('.');
    std::string_view whole = number.substr(0, dot);
    std::string_view fraction = dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
    if (whole.empty() && fraction.empty()) return std::nullopt;
    if (dot != std::string_view::npos && (fraction.empty() || fraction.find('.') != std::string_view::npos))
        return std::nullopt;
    std::string unit;
    for (char c : text.substr(end)) unit += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (unit.ends_with('b')) unit.pop_back();
    if (unit.size() == 2 && unit.back() == 'i') unit.pop_back();
    static constexpr std::string_view units = "kmgtp";
    if (unit.size() > 1 || (unit.size() == 1 && units.find(unit[0]) == std::string_view::npos)) return std::nullopt;
    long double value = 0;
    for (char c : whole) value = value * 10 + (c - '0');
    long double scale = 1;
    for (char c : fraction) value += (c - '0') / (scale *= 10);
    if (unit.size() == 1)
        for (size_t i = 0; i <= units.find(unit[0]); ++i) value *= 1024;
    if (!(value < 0x1p63L)) return std::nullopt;  // past INT64_MAX
    return static_cast<int64_t>(value);
}

int64_t parse_duration(std::string_view text) {
    auto bad = [&](const std::string& why) { return error("invalid duration " + quote(text) + ": " + why); };
    std::string_view s = text;
    bool negative = s.starts_with('-');
    if (s.starts_with('-') || s.starts_with('+')) s.remove_prefix(1);
    if (s == "0") return 0;
    if (s.empty()) throw bad("expected a number and a unit, e.g. 30s");
    static const std::pair<std::string_view, uint64_t> units[] = {
        {"ns", 1},        {"us", 1'000},          {"\u00b5s", 1'000},           {"\u03bcs", 1'000},
        {"ms", 1'000'000}, {"s", 1'000'000'000}, {"m", 60'000'000'000ULL}, {"h", 3'600'000'000'000ULL}};
    constexpr uint64_t limit = uint64_t{1} << 63;  // |INT64_MIN|
    uint64_t total = 0;
    while (!s.empty()) {
        uint64_t whole = 0;
        size_t i = 0;
        for (; i < s.size() && is_digit(s[i]); ++i) {
            if (whole > (limit - 9) / 10) throw bad("out of range");
            whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
        }
        bool has_whole = i > 0;
        double fraction = 0, scale = 1;
        bool has_fraction = false;
        if (i < s.size() && s[i] == '.') {
            for (++i; i < s.size() && is_digit(s[i]); ++i) {
                has_fraction = true;
                fraction = fraction * 10 + (s[i] - '0');
                scale *= 10;
            }
        }
        if (!has_whole && !has_fraction) throw bad("expected a number");
        s.remove_prefix(i);
        size_t unit_end = 0;
        while (unit_end < s.size() && s[unit_end] != '.' && !is_digit(s[unit_end])) ++unit_end;
        std::string_view unit = s.substr(0, unit_end);
        s.remove_prefix(unit_end);
        if (unit.empty()) throw bad("missing unit (ns, us, ms, s, m or h)");
        auto u = std::find_if(std::begin(units), std::end(units), [&](const auto& x) { return x.first == unit; });
        if (u == std::end(units)) throw bad("unknown unit " + quote(unit) + " (expected ns, us, ms, s, m or h)");
        if (whole > limit / u->second) throw bad("out of range");
        uint64_t part = whole * u->second + static_cast<uint64_t>(fraction * (static_cast<double>(u->second) / scale));
        if (part > limit || total > limit - part) throw bad("out of range");
        total += part;
    }
    if (!negative && total == limit) throw bad("out of range");
    return negative ? static_cast<int64_t>(0 - total) : static_cast<int64_t>(total);
}

}  // namespace pieces
