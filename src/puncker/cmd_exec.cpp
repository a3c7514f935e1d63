#include "core/base/error.h"
#include "core/container/lifecycle.h"
#include "puncker/commands.h"

namespace puncker {

command add_exec(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("exec", "run a new process inside a running container");
    auto o = std::make_shared<pieces::container::exec_options>();
    sub->add_option("-p,--process", o->process_file, "a JSON file with the process (config.json's \"process\")");
    sub->add_flag("-t,--tty", o->tty, "allocate a pseudo-TTY (needs --console-socket)");
    sub->add_option("--console-socket", o->console_socket, "unix socket that receives the pty master");
    sub->add_option("-e,--env", o->env, "set an environment variable (K=V)");
    sub->add_option("-u,--user", o->user, "uid[:gid]");
    sub->add_option("-g,--additional-gids", o->additional_gids, "additional gids");
    sub->add_option("--cwd", o->cwd, "working directory in the container");
    sub->add_option("-c,--cap", o->caps, "add a capability");
    sub->add_flag("--no-new-privs", o->no_new_privs, "set no_new_privs");
    sub->add_flag("-d,--detach", o->detach, "detach from the process");
    sub->add_option("--pid-file", o->pid_file, "file to write the process id to");
    sub->add_option("--preserve-fds", o->preserve_fds, "pass N extra fds (from 3) to the process");
    sub->add_flag("--ignore-paused", o->ignore_paused, "allow exec into a paused container");
    sub->add_option("--cgroup", o->sub_cgroups, "run in an existing sub-cgroup: [controller[,controller]:]path");
    sub->add_option("--apparmor", o->apparmor_profile, "AppArmor profile for the process");
    sub->add_option("--process-label", o->process_label, "SELinux label for the process");
    sub->add_option("id", o->id, "container id")->required();
    sub->prefix_command();
    return {sub, [o, sub, &ctx] {
                o->root = ctx.root;
                o->args = sub->remaining();
                ctx.exit_code = pieces::container::exec(*o);
            }};
}

}  // namespace puncker
