#include "core/container/lifecycle.h"
#include "puncker/commands.h"

namespace puncker {

/// Flags shared by create and run.
std::shared_ptr<pieces::container::create_options> add_create_flags(CLI::App* sub) {
    auto o = std::make_shared<pieces::container::create_options>();
    sub->add_option("-b,--bundle", o->bundle, "path to the root of the bundle directory");
    sub->add_option("--pid-file", o->pid_file, "file to write the process id to");
    sub->add_option("--console-socket", o->console_socket, "unix socket that receives the pty master");
    sub->add_flag("--no-pivot", o->no_pivot, "do not use pivot_root (for a ramdisk root)");
    sub->add_flag("--no-new-keyring", o->no_new_keyring, "do not create a new session keyring");
    sub->add_option("--preserve-fds", o->preserve_fds, "pass N extra fds (from 3) to the container");
    sub->add_option("id", o->id, "container id")->required();
    return o;
}

command add_create(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("create", "create a container");
    auto o = add_create_flags(sub);
    return {sub, [o, &ctx] {
                o->root = ctx.root;
                o->systemd_cgroup = ctx.systemd_cgroup;
                pieces::container::create(*o);
            }};
}

command add_run(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("run", "create and run a container");
    auto o = add_create_flags(sub);
    auto r = std::make_shared<pieces::container::run_options>();
    sub->add_flag("-d,--detach", r->detach, "detach from the container's process");
    sub->add_flag("--keep", r->keep, "do not delete the container after it exits");
    sub->add_flag("--no-subreaper", r->no_subreaper, "do not become a subreaper");
    return {sub, [o, r, &ctx] {
                o->root = ctx.root;
                o->systemd_cgroup = ctx.systemd_cgroup;
                ctx.exit_code = pieces::container::run(*o, *r);
            }};
}

}  // namespace puncker
