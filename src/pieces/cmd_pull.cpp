// pieces pull: an image from a registry into the store.
#include <cstdio>
#include <string>

#include "core/base/error.h"
#include "core/image/image.h"
#include "core/image/pull.h"
#include "core/image/store.h"
#include "pieces/commands.h"
#include "pieces/transfer_report.h"

namespace pieces_cli {

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
                transfer_report report = make_transfer_report(*quiet);
                o.say = report.say;
                o.progress = report.progress;
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
