// start, kill and delete: small verbs over one container.
#include "core/base/signals.h"
#include "core/container/lifecycle.h"
#include "puncker/commands.h"

namespace puncker {

command add_start(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("start", "start a created container");
    auto id = std::make_shared<std::string>();
    sub->add_option("id", *id, "container id")->required();
    return {sub, [id, &ctx] { pieces::container::start(ctx.root, *id); }};
}

command add_kill(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("kill", "send a signal (default SIGTERM) to the container's init");
    auto id = std::make_shared<std::string>();
    auto sig = std::make_shared<std::string>("SIGTERM");
    auto all = std::make_shared<bool>(false);
    sub->add_flag("-a,--all", *all, "send the signal to every process in the container");
    sub->add_option("id", *id, "container id")->required();
    sub->add_option("signal", *sig, "signal name or number");
    return {sub, [=, &ctx] { pieces::container::kill(ctx.root, *id, pieces::parse_signal(*sig), *all); }};
}

command add_delete(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("delete", "delete a container and what it holds");
    auto id = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    sub->add_flag("-f,--force", *force, "kill a running container first");
    sub->add_option("id", *id, "container id")->required();
    return {sub, [=, &ctx] { pieces::container::remove(ctx.root, *id, *force); }};
}

}  // namespace puncker
