// The pieces command table: each command registers itself on the CLI app.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace pieces_cli {

/// Global flags and the exit status a command leaves.
struct context {
    std::string root;  ///< --root: the store (default: PIECES_ROOT, /var/lib/pieces, ~/.local/share/pieces)
    int exit_code = 0;
};

/// A registered command: its CLI11 subcommand and what to do when it was given.
struct command {
    CLI::App* sub;
    std::function<void()> run;
};

command add_build(CLI::App& app, context& ctx);
command add_run(CLI::App& app, context& ctx);
command add_exec(CLI::App& app, context& ctx);
command add_ps(CLI::App& app, context& ctx);
command add_stop(CLI::App& app, context& ctx);
command add_kill(CLI::App& app, context& ctx);
command add_wait(CLI::App& app, context& ctx);
command add_rm(CLI::App& app, context& ctx);
command add_logs(CLI::App& app, context& ctx);
command add_images(CLI::App& app, context& ctx);
command add_rmi(CLI::App& app, context& ctx);
command add_tag(CLI::App& app, context& ctx);
command add_inspect(CLI::App& app, context& ctx);
command add_save(CLI::App& app, context& ctx);
command add_load(CLI::App& app, context& ctx);
command add_prune(CLI::App& app, context& ctx);
command add_pull(CLI::App& app, context& ctx);
command add_push(CLI::App& app, context& ctx);
command add_login(CLI::App& app, context& ctx);
command add_logout(CLI::App& app, context& ctx);

}  // namespace pieces_cli
