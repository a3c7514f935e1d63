// Logging: text or runc-style JSON lines to stderr and an optional log file.
#pragma once

#include <string>
#include <string_view>

namespace pieces::log {

enum class format { text, json };

/// Where and how messages go; set once by a program's main.
void configure(const std::string& file, format fmt, bool debug);

/// Logs at "error", always.
void error(std::string_view msg);
/// Logs at "warning", always.
void warning(std::string_view msg);
/// Logs at "debug" when --debug was given.
void debug(std::string_view msg);

/// True when --debug was given.
bool debugging();

/// The current time in RFC 3339 with nanoseconds, as the OCI state's "created" uses.
std::string rfc3339_now();

}  // namespace pieces::log
