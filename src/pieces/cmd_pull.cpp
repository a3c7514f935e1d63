// pieces pull: an image from a registry into the store.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/image/image.h"
#include "core/image/pull.h"
#include "core/image/store.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {

// On a terminal: one row per layer, redrawn in place, with a bar while it downloads
// ("3f2a9c01d2e4: [=========>          ]  1.2 MB / 2.5 MB", then "3f2a9c01d2e4: pulled 2.5 MB").
class layer_rows {
public:
    /// A line from the pull: "<id>: <what happened>" updates that layer's row; others are printed.
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

command add_pull(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("pull", "pull an image from a registry into the store");
    auto image = std::make_shared<std::string>();
    auto platform = std::make_shared<std::string>();
    auto quiet = std::make_shared<bool>(false);
    sub->add_option("--platform", *platform, "os/architecture[/variant] to pull from a multi-platform image (default: this machine)");
    sub->add_flag("-q,--quiet", *quiet, "print only the image id");
    sub->add_option("image", *image, "the image reference (alpine:3.18, host:5000/name:tag, name@sha256:...)")->required();
    return {sub, [image, platform, quiet, &ctx] {
                pieces::image::pull_options o;
                if (!platform->empty()) o.want = pieces::image::platform::parse(*platform);
                if (!*quiet && ::isatty(STDOUT_FILENO)) {
                    auto rows = std::make_shared<layer_rows>();
                    o.say = [rows](const std::string& line) { rows->line(line); };
                    o.progress = [rows](const std::string& id, uint64_t done, uint64_t total) { rows->update(id, done, total); };
                } else if (!*quiet) {
                    // Not a terminal: one line per layer when it is done, nothing redrawn.
                    o.say = [](const std::string& line) {
                        std::printf("%s\n", line.c_str());
                        std::fflush(stdout);
                    };
                }
                pieces::image::store s = pieces::image::store::open(ctx.root, true);
                pieces::image::pull_result r = pieces::image::pull(s, *image, o);
                if (*quiet) {
                    std::printf("%s\n", r.manifest.hex().c_str());
                    return;
                }
                std::printf("Digest: %s\n", r.registry_digest.str().c_str());
                if (r.name.empty())
                    std::printf("Pulled %s (id %s; unnamed: name it with `pieces tag`)\n", image->c_str(), r.manifest.hex().c_str());
                else
                    std::printf("Pulled %s (id %s)\n", r.name.c_str(), r.manifest.hex().substr(0, 12).c_str());
            }};
}

}  // namespace pieces_cli
