// The puncker command table: each command registers itself on the CLI app.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace puncker {

/// Global flags and the exit status a command leaves.
struct context {
    std::string root;
    std::string log_file;
    std::string log_format = "text";
    bool debug = false;
    bool systemd_cgroup = false;
    std::string rootless = "auto";
    int exit_code = 0;
};

/// A registered command: its CLI11 subcommand and what to do when it was given.
struct command {
    CLI::App* sub;
    std::function<void()> run;
};

command add_spec(CLI::App& app, context& ctx);
command add_create(CLI::App& app, context& ctx);
command add_start(CLI::App& app, context& ctx);
command add_run(CLI::App& app, context& ctx);
command add_state(CLI::App& app, context& ctx);
command add_kill(CLI::App& app, context& ctx);
command add_delete(CLI::App& app, context& ctx);
command add_list(CLI::App& app, context& ctx);
command add_ps(CLI::App& app, context& ctx);
command add_features(CLI::App& app, context& ctx);
command add_pause(CLI::App& app, context& ctx);
command add_resume(CLI::App& app, context& ctx);
command add_update(CLI::App& app, context& ctx);
command add_events(CLI::App& app, context& ctx);
command add_exec(CLI::App& app, context& ctx);

/// The default --root: /run/puncker for root, $XDG_RUNTIME_DIR/puncker otherwise.
std::string default_root();

/// Prints JSON the way the runc family does (indented where runc indents).
void print_json(const nlohmann::json& j, int indent);

}  // namespace puncker
