// pieces pull: an image from a registry into the store.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "core/base/error.h"
#include "core/image/image.h"
#include "core/image/pull.h"
#include "core/image/store.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {

// One status line redrawn in place on a terminal: bytes of every layer being downloaded.
class live_progress {
public:
    void update(size_t layer, uint64_t done, uint64_t total) {
        std::lock_guard lock(mu_);
        if (layers_.size() <= layer) layers_.resize(layer + 1);
        layers_[layer] = {done, total};
        auto now = std::chrono::steady_clock::now();
        if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        uint64_t all_done = 0, all_total = 0;
        for (const auto& [d, t] : layers_) {
            all_done += d;
            all_total += t;
        }
        std::fprintf(stdout, "\r\033[KDownloading %s of %s", pieces::image::human_size(all_done).c_str(),
                     pieces::image::human_size(all_total).c_str());
        std::fflush(stdout);
        drawn_ = true;
    }
    /// Prints a whole line, first clearing the status line.
    void line(const std::string& text) {
        std::lock_guard lock(mu_);
        std::printf("%s%s\n", drawn_ ? "\r\033[K" : "", text.c_str());
        std::fflush(stdout);
        drawn_ = false;
    }

private:
    std::mutex mu_;
    std::vector<std::pair<uint64_t, uint64_t>> layers_;
    std::chrono::steady_clock::time_point last_{};
    bool drawn_ = false;
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
                auto live = std::make_shared<live_progress>();
                if (!*quiet) {
                    // Per-layer lines always; the byte counter only where someone watches it.
                    o.say = [live](const std::string& line) { live->line(line); };
                    if (::isatty(STDOUT_FILENO))
                        o.progress = [live](size_t layer, uint64_t done, uint64_t total) { live->update(layer, done, total); };
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
