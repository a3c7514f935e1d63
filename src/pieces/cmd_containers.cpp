// Container commands: run, exec, ps, stop, rm, logs.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/container/lifecycle.h"
#include "core/image/containers.h"
#include "pieces/commands.h"

namespace pieces_cli {

command add_run(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("run", "run a container from an image");
    auto r = std::make_shared<pieces::image::run_request>();
    auto volumes = std::make_shared<std::vector<std::string>>();
    auto entrypoint = std::make_shared<std::string>();
    auto network = std::make_shared<std::string>("host");
    sub->add_flag("--rm", r->remove, "remove the container when it exits");
    sub->add_flag("-d,--detach", r->detach, "run in the background; print the container id");
    sub->add_flag("-i,--interactive", r->interactive, "keep stdin open");
    sub->add_flag("-t,--tty", r->tty, "a terminal for the container");
    sub->add_option("--name", r->name, "name of the container");
    sub->add_option("-e,--env", r->env, "K=V (or K: the value here)");
    sub->add_option("-v,--volume", *volumes, "bind mount SRC:DST[:ro]");
    sub->add_option("-w,--workdir", r->workdir, "working directory");
    sub->add_option("-u,--user", r->user, "user[:group], by name or number");
    sub->add_option("--hostname", r->hostname, "host name of the container");
    sub->add_flag("--read-only", r->read_only, "read-only root filesystem");
    sub->add_option("--entrypoint", *entrypoint, "replace the image's entrypoint");
    sub->add_option("--network", *network, "host (the host's network) or none (loopback only)")
        ->check(CLI::IsMember({"host", "none"}));
    sub->add_option("image", r->image, "image name[:tag] or id")->required();
    sub->prefix_command();
    return {sub, [r, volumes, entrypoint, network, sub, &ctx] {
                r->cmd = sub->remaining();
                if (!entrypoint->empty()) r->entrypoint = std::vector<std::string>{*entrypoint};
                for (const auto& v : *volumes) r->volumes.push_back(pieces::image::volume::parse(v));
                r->host_network = *network == "host";
                if (r->detach && r->tty) throw pieces::error("-d with -t: a detached container has no terminal to give");
                if (!r->interactive && !r->tty && !r->detach) {
                    // Without -i the container's stdin is empty, as Docker makes it.
                    pieces::unique_fd null = pieces::open_path("/dev/null", O_RDONLY);
                    ::dup2(null.get(), 0);
                }
                std::string id;
                int code = pieces::image::run_container(ctx.root, *r, &id);
                if (r->detach) std::printf("%s\n", id.c_str());
                ctx.exit_code = code;
            }};
}

command add_exec(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("exec", "run a command in a running container");
    auto name = std::make_shared<std::string>();
    auto o = std::make_shared<pieces::container::exec_options>();
    auto interactive = std::make_shared<bool>(false);
    sub->add_flag("-i,--interactive", *interactive, "keep stdin open");
    sub->add_flag("-t,--tty", o->tty, "a terminal for the command");
    sub->add_flag("-d,--detach", o->detach, "do not wait for the command");
    sub->add_option("-e,--env", o->env, "K=V");
    sub->add_option("-u,--user", o->user, "uid[:gid]");
    sub->add_option("-w,--workdir", o->cwd, "working directory");
    sub->add_option("container", *name, "container name or id")->required();
    sub->prefix_command();
    return {sub, [o, name, interactive, sub, &ctx] {
                pieces::image::container_info c = pieces::image::find_container(ctx.root, *name);
                o->root = pieces::image::state_root(ctx.root);
                o->id = c.id;
                o->args = sub->remaining();
                if (o->args.empty()) throw pieces::error("exec needs a command");
                if (!*interactive && !o->tty) {
                    pieces::unique_fd null = pieces::open_path("/dev/null", O_RDONLY);
                    ::dup2(null.get(), 0);
                }
                ctx.exit_code = pieces::container::exec(*o);
            }};
}

command add_ps(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("ps", "list containers");
    auto all = std::make_shared<bool>(false);
    auto quiet = std::make_shared<bool>(false);
    sub->add_flag("-a,--all", *all, "also stopped containers");
    sub->add_flag("-q,--quiet", *quiet, "ids only");
    return {sub, [all, quiet, &ctx] {
                auto list = pieces::image::list_containers(ctx.root);
                if (!*quiet) std::printf("%-12s  %-20s  %-24s  %-14s  %-20s  %s\n", "CONTAINER ID", "NAME", "IMAGE", "STATUS", "CREATED", "COMMAND");
                for (const auto& c : list) {
                    bool live = c.status == "running" || c.status == "paused" || c.status == "created";
                    if (!*all && !live) continue;
                    if (*quiet) std::printf("%s\n", c.id.substr(0, 12).c_str());
                    else
                        std::printf("%-12s  %-20s  %-24s  %-14s  %-20s  %s\n", c.id.substr(0, 12).c_str(), c.name.c_str(), c.image.c_str(),
                                    c.status.c_str(), c.created.c_str(), c.command.c_str());
                }
            }};
}

command add_stop(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("stop", "stop containers: SIGTERM, then SIGKILL after the timeout");
    auto names = std::make_shared<std::vector<std::string>>();
    auto timeout = std::make_shared<int>(10);
    sub->add_option("-t,--time", *timeout, "seconds to wait before SIGKILL (default 10)");
    sub->add_option("container", *names, "container names or ids")->required();
    return {sub, [names, timeout, &ctx] {
                for (const auto& n : *names) {
                    pieces::image::stop_container(ctx.root, n, *timeout);
                    std::printf("%s\n", n.c_str());
                }
            }};
}

command add_rm(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("rm", "remove containers");
    auto names = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    sub->add_flag("-f,--force", *force, "kill a running container first");
    sub->add_option("container", *names, "container names or ids")->required();
    return {sub, [names, force, &ctx] {
                for (const auto& n : *names) {
                    pieces::image::remove_container(ctx.root, n, *force);
                    std::printf("%s\n", n.c_str());
                }
            }};
}

command add_logs(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("logs", "the output of a detached container");
    auto name = std::make_shared<std::string>();
    auto follow = std::make_shared<bool>(false);
    sub->add_flag("-f,--follow", *follow, "keep printing until the container exits");
    sub->add_option("container", *name, "container name or id")->required();
    return {sub, [name, follow, &ctx] {
                std::string path = pieces::image::log_path(ctx.root, *name);
                pieces::unique_fd log(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
                if (!log) throw pieces::error("container " + pieces::quote(*name) + " keeps no log (it was not run with -d)");
                char buf[65536];
                for (;;) {
                    ssize_t n = ::read(log.get(), buf, sizeof buf);
                    if (n > 0) {
                        pieces::write_all(pieces::borrowed_fd(1), std::string_view(buf, static_cast<size_t>(n)), "stdout");
                        continue;
                    }
                    if (!*follow) break;
                    std::string st = pieces::image::find_container(ctx.root, *name).status;
                    if (st != "running" && st != "paused") {
                        // One last read: what was written before it ended.
                        while ((n = ::read(log.get(), buf, sizeof buf)) > 0)
                            pieces::write_all(pieces::borrowed_fd(1), std::string_view(buf, static_cast<size_t>(n)), "stdout");
                        break;
                    }
                    ::poll(nullptr, 0, 100);
                }
            }};
}

}  // namespace pieces_cli
