// How pull and push report their blobs: on a terminal, one row per blob redrawn in place with a
// bar while it transfers; piped, one plain line per blob when it is done; nothing when quiet.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace pieces_cli {

struct transfer_report {
    /// A line from the transfer: "<12 hex>: <what happened>" is that blob's row; others are printed.
    std::function<void(const std::string& line)> say;
    /// Bytes moved so far for a blob (called from transfer threads); unset when not on a terminal.
    std::function<void(const std::string& id, uint64_t done, uint64_t total)> progress;
};

/// The report for standard output: rows on a terminal, lines otherwise, nothing when `quiet`.
transfer_report make_transfer_report(bool quiet);

}  // namespace pieces_cli
