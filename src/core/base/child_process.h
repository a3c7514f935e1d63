// Running a short-lived program to completion: what we give it on standard input, what it
// prints, how it ended. Hooks and credential helpers are run this way.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pieces {

struct child_program {
    std::string path;                                 ///< the executable (a bare name with search_path)
    std::vector<std::string> argv;                    ///< argv[0] included
    const std::vector<std::string>* env = nullptr;    ///< the environment; null: ours
    bool search_path = false;                         ///< look `path` up in $PATH
    bool merge_stderr = false;                        ///< standard error into `out` as well
    std::optional<int> timeout_seconds;               ///< killed (SIGKILL) when it runs longer
    size_t output_limit = 1 << 20;                    ///< bytes kept of each stream
};

struct child_result {
    int spawn_error = 0;  ///< errno when it could not be started (then nothing else is set)
    int status = 0;       ///< its exit status
    int signal = 0;       ///< the signal that killed it, or 0
    std::string out;      ///< standard output (and error, when merged)
    std::string err;      ///< standard error
};

/// Starts `p` with `input` on its standard input, collects its output and waits for it. It is
/// done when it exits, even if a process it left behind still holds its output open. Standard
/// input is a socket written without SIGPIPE, so a program that does not read it costs nothing;
/// every descriptor is close-on-exec, so it gets its three and nothing else of ours; its signal
/// mask is empty and SIGPIPE is back to the default. Throws "timed out after N s" (the program
/// killed and reaped first) and for failing system calls.
child_result run_child(const child_program& p, std::string_view input);

/// The last non-empty line of what a program printed, for an error message.
std::string last_line(std::string_view text);

}  // namespace pieces
