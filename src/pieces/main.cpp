// pieces: build images from a Piecefile, keep them in a local store, run containers from them.
#include <cstdio>
#include <vector>

#include "core/base/error.h"
#include "core/image/store.h"
#include "pieces/commands.h"

int main(int argc, char** argv) {
    pieces_cli::context ctx;
    CLI::App app{"pieces: build, keep and run container images", "pieces"};
    app.add_option("--root", ctx.root, "the image store (default $PIECES_ROOT, /var/lib/pieces for root)");
    bool version = false;
    app.add_flag("-v,--version", version, "print the version");
    app.require_subcommand(0, 1);

    const std::vector<pieces_cli::command> commands = {
        pieces_cli::add_build(app, ctx), pieces_cli::add_run(app, ctx),    pieces_cli::add_exec(app, ctx),
        pieces_cli::add_ps(app, ctx),    pieces_cli::add_stop(app, ctx),   pieces_cli::add_rm(app, ctx),
        pieces_cli::add_kill(app, ctx),  pieces_cli::add_wait(app, ctx),
        pieces_cli::add_logs(app, ctx),  pieces_cli::add_images(app, ctx), pieces_cli::add_rmi(app, ctx),
        pieces_cli::add_tag(app, ctx),   pieces_cli::add_inspect(app, ctx), pieces_cli::add_prune(app, ctx),
        pieces_cli::add_save(app, ctx),  pieces_cli::add_load(app, ctx),
        pieces_cli::add_pull(app, ctx),  pieces_cli::add_push(app, ctx),  pieces_cli::add_login(app, ctx),
        pieces_cli::add_logout(app, ctx),
    };
    // Each flag takes one value each time it is given: "-e A=1 -e B=2 IMAGE CMD".
    for (CLI::App* sub : app.get_subcommands({}))
        for (CLI::Option* opt : sub->get_options({}))
            if (!opt->get_positional()) opt->allow_extra_args(false);

    try {
        app.parse(argc, argv);
        if (version) {
            std::printf("pieces version %s\n", PIECES_VERSION);
            return 0;
        }
        if (ctx.root.empty()) ctx.root = pieces::image::default_store_root();
        for (const auto& c : commands) {
            if (c.sub->parsed()) {
                c.run();
                return ctx.exit_code;
            }
        }
        std::fputs(app.help().c_str(), stdout);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "pieces: %s\n", e.what());
        return 125;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pieces: %s\n", e.what());
        return 125;
    }
    return ctx.exit_code;
}
