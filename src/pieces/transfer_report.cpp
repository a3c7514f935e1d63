#include "pieces/transfer_report.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "core/image/image.h"

namespace pieces_cli {
namespace {

// On a terminal: one row per blob, redrawn in place, with a bar while it transfers
// ("3f2a9c01d2e4: [=========>          ]  1.2 MB / 2.5 MB", then "3f2a9c01d2e4: pulled 2.5 MB").
class layer_rows {
public:
    /// A line from the transfer: "<id>: <what happened>" updates that blob's row; others are printed.
    void line(const std::string& text) {
        std::lock_guard lock(mu_);
        size_t colon = text.find(": ");
        if (colon == 12) {
            row(text.substr(0, 12)) = text.substr(14);
        } else {
            std::printf("%s\n", text.c_str());
            drawn_ = 0;  // the rows start again below this line
        }
        redraw();
    }
    void update(const std::string& id, uint64_t done, uint64_t total) {
        std::lock_guard lock(mu_);
        const int width = 30;
        int filled = total ? static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width) : width;
        std::string bar = "[" + std::string(static_cast<size_t>(filled), '=') + (filled < width ? ">" : "") +
                          std::string(static_cast<size_t>(width - std::min(filled + 1, width)), ' ') + "] ";
        row(id) = bar + pieces::image::human_size(done) + " / " + pieces::image::human_size(total);
        auto now = std::chrono::steady_clock::now();
        if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        redraw();
    }

private:
    std::string& row(const std::string& id) {
        for (auto& [k, v] : rows_)
            if (k == id) return v;
        rows_.emplace_back(id, "");
        return rows_.back().second;
    }
    // Moves up over the rows drawn before and draws them all again.
    void redraw() {
        if (drawn_ > 0) std::printf("\033[%zuA", drawn_);
        for (const auto& [id, text] : rows_) std::printf("\r\033[K%s: %s\n", id.c_str(), text.c_str());
        drawn_ = rows_.size();
        std::fflush(stdout);
    }
    std::mutex mu_;
    std::vector<std::pair<std::string, std::string>> rows_;
    size_t drawn_ = 0;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace

transfer_report make_transfer_report(bool quiet) {
    transfer_report r;
    if (quiet) return r;
    if (::isatty(STDOUT_FILENO)) {
        auto rows = std::make_shared<layer_rows>();
        r.say = [rows](const std::string& line) { rows->line(line); };
        r.progress = [rows](const std::string& id, uint64_t done, uint64_t total) { rows->update(id, done, total); };
        return r;
    }
    // Not a terminal: one line per blob when it is done, nothing redrawn.
    r.say = [](const std::string& line) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    };
    return r;
}

}  // namespace pieces_cli
