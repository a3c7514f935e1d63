#include <cstdio>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/build/builder.h"
#include "pieces/commands.h"

namespace pieces_cli {

command add_build(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("build", "build an image from a Piecefile (or Dockerfile)");
    auto o = std::make_shared<pieces::build::build_options>();
    auto args = std::make_shared<std::vector<std::string>>();
    auto quiet = std::make_shared<bool>(false);
    sub->add_option("-t,--tag", o->tag, "name[:tag] of the image (default: from FROM)");
    sub->add_option("-f,--file", o->file, "the Piecefile (default: DIR/Piecefile, else DIR/Dockerfile)");
    sub->add_option("--build-arg", *args, "K=V for an ARG");
    sub->add_flag("--no-cache", o->no_cache, "run every step, ignoring the cache");
    sub->add_flag("-q,--quiet", *quiet, "print only the image id");
    sub->add_option("dir", o->context, "the build context")->required();
    return {sub, [o, args, quiet, &ctx] {
                o->store_root = ctx.root;
                for (const std::string& kv : *args) {
                    size_t eq = kv.find('=');
                    if (eq == std::string::npos || eq == 0) throw pieces::error("--build-arg " + pieces::quote(kv) + ": expected K=V");
                    o->build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
                }
                if (!*quiet) o->say = [](const std::string& line) {
                    std::printf("%s\n", line.c_str());
                    std::fflush(stdout);
                };
                pieces::build::build_result r = pieces::build::build(*o);
                if (*quiet) std::printf("%s\n", r.manifest.hex().c_str());
                else std::printf("Built %s (id %s; %d steps, %d from the cache)\n", r.name.c_str(), r.manifest.hex().substr(0, 12).c_str(), r.steps, r.cached);
            }};
}

}  // namespace pieces_cli
