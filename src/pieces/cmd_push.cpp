// pieces push: an image from the store to a registry.
#include <cstdio>
#include <string>

#include "core/image/push.h"
#include "core/image/store.h"
#include "pieces/commands.h"
#include "pieces/transfer_report.h"

namespace pieces_cli {

command add_push(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("push", "push an image from the store to a registry");
    auto image = std::make_shared<std::string>();
    auto dest = std::make_shared<std::string>();
    auto quiet = std::make_shared<bool>(false);
    sub->add_flag("-q,--quiet", *quiet, "print only the pushed digest");
    sub->add_option("image", *image, "the image in the store (name or id)")->required();
    sub->add_option("destination", *dest, "where to push it (host:5000/name:tag); default: the image's own name");
    return {sub, [image, dest, quiet, &ctx] {
                pieces::image::push_options o;
                transfer_report report = make_transfer_report(*quiet);
                o.say = report.say;
                o.progress = report.progress;
                pieces::image::store s = pieces::image::store::open(ctx.root, false);
                pieces::image::push_result r = pieces::image::push(s, *image, *dest, o);
                if (*quiet) {
                    std::printf("%s\n", r.manifest.str().c_str());
                    return;
                }
                std::printf("Digest: %s\n", r.manifest.str().c_str());
                std::printf("Pushed %s\n", r.destination.str().c_str());
            }};
}

}  // namespace pieces_cli
