// Signal names and numbers as the runtime's command line spells them.
#pragma once

#include <string>

namespace pieces {

/// Parses "9", "KILL" or "SIGKILL" (also "RTMIN+3"); throws on anything else.
int parse_signal(const std::string& text);

/// "SIGTERM" for 15 (also "SIGRTMIN+3"); the number as text for one without a name.
std::string signal_name(int sig);

}  // namespace pieces
