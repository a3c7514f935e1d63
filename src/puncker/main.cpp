// puncker: an OCI runtime with runc's command line.
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/log.h"
#include "core/spec/config.h"
#include "puncker/commands.h"

namespace {

// runc's flag parser also takes long flags with a single dash ("-bundle", "-no-subreaper"),
// and containerd sends some that way. Rewrite those into "--" form before parsing.
std::vector<std::string> normalize_long_flags(int argc, char** argv, const CLI::App& app) {
    std::set<std::string> longs;
    auto collect = [&](const CLI::App* a) {
        for (const CLI::Option* o : a->get_options())
            for (const std::string& n : o->get_lnames()) longs.insert(n);
    };
    collect(&app);
    for (const CLI::App* sub : app.get_subcommands({})) collect(sub);
    std::vector<std::string> out;
    bool done = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") done = true;
        if (!done && a.size() > 2 && a[0] == '-' && a[1] != '-') {
            std::string name = a.substr(1, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 1);
            if (longs.count(name)) a = "-" + a;
        }
        out.push_back(a);
    }
    // CLI11 wants the arguments in reverse order.
    return {out.rbegin(), out.rend()};
}

void print_version() {
    std::printf("puncker version %s\nspec: %s\n", PIECES_VERSION, pieces::spec::oci_version);
}

}  // namespace

int main(int argc, char** argv) {
    puncker::context ctx;
    CLI::App app{"puncker: an OCI container runtime", "puncker"};
    app.require_subcommand(0, 1);
    app.set_help_all_flag("--help-all", "Expand all help");
    app.add_option("--root", ctx.root, "root directory for container state (default /run/puncker)");
    app.add_option("--log", ctx.log_file, "write log lines to this file");
    app.add_option("--log-format", ctx.log_format, "log format: text or json")->check(CLI::IsMember({"text", "json"}));
    app.add_flag("--debug", ctx.debug, "log debug messages");
    app.add_flag("--systemd-cgroup", ctx.systemd_cgroup, "treat cgroupsPath as slice:prefix:name");
    app.add_option("--rootless", ctx.rootless, "rootless mode: true, false or auto");
    bool version = false;
    app.add_flag("-v,--version", version, "print the version");

    const std::vector<puncker::command> commands = {
        puncker::add_spec(app, ctx),   puncker::add_create(app, ctx), puncker::add_start(app, ctx),
        puncker::add_run(app, ctx),    puncker::add_state(app, ctx),  puncker::add_kill(app, ctx),
        puncker::add_delete(app, ctx), puncker::add_list(app, ctx),   puncker::add_ps(app, ctx),
        puncker::add_features(app, ctx), puncker::add_pause(app, ctx),  puncker::add_resume(app, ctx),
        puncker::add_update(app, ctx),   puncker::add_events(app, ctx),  puncker::add_exec(app, ctx),
    };
    // Each flag takes one value each time it is given, as runc's do ("-e A=1 -e B=2"): a list
    // flag must not swallow the container id and command that follow it.
    for (CLI::App* sub : app.get_subcommands({}))
        for (CLI::Option* opt : sub->get_options({}))
            if (!opt->get_positional()) opt->allow_extra_args(false);

    try {
        std::vector<std::string> args = normalize_long_flags(argc, argv, app);
        app.parse(args);
        pieces::log::configure(ctx.log_file, ctx.log_format == "json" ? pieces::log::format::json : pieces::log::format::text,
                               ctx.debug);
        if (ctx.root.empty()) ctx.root = puncker::default_root();
        if (version) {
            print_version();
            return 0;
        }
        for (const auto& c : commands) {
            if (c.sub->parsed()) {
                c.run();
                return ctx.exit_code;
            }
        }
        std::fputs(app.help().c_str(), stdout);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        pieces::log::error(std::string("puncker: ") + e.what());
        return 1;
    } catch (const std::exception& e) {
        pieces::log::error(e.what());
        return 1;
    }
    return ctx.exit_code;
}
