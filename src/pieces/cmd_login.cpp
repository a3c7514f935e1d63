// pieces login, pieces logout: credentials for a registry in the auth file (or the credential
// helper it names).
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "core/base/error.h"
#include "core/image/login.h"
#include "core/image/registry_files.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {

// A line from standard input, without its line end.
std::string read_line(bool* ended) {
    std::string line;
    *ended = !std::getline(std::cin, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// Asks on the terminal; the password is not echoed.
std::string prompt(const char* what, bool secret) {
    std::fprintf(stderr, "%s: ", what);
    std::fflush(stderr);
    termios saved{};
    bool hide = secret && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (hide) {
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool ended = false;
    std::string answer = read_line(&ended);
    if (hide) {
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::fputc('\n', stderr);
    }
    return answer;
}

}  // namespace

command add_login(CLI::App& app, context&) {
    auto* sub = app.add_subcommand("login", "check credentials for a registry and keep them for pull and push");
    auto registry = std::make_shared<std::string>();
    auto user = std::make_shared<std::string>();
    auto password = std::make_shared<std::string>();
    auto from_stdin = std::make_shared<bool>(false);
    sub->add_option("-u,--username", *user, "the user name (asked for on a terminal when not given)");
    auto* pass = sub->add_option("-p,--password", *password, "the password (visible to other users in the process list)");
    sub->add_flag("--password-stdin", *from_stdin, "read the password from standard input")->excludes(pass);
    sub->add_option("registry", *registry, "HOST[:PORT] (default: docker.io)");
    return {sub, [registry, user, password, from_stdin] {
                std::string host = pieces::image::login_registry(*registry);
                bool terminal = ::isatty(STDIN_FILENO);
                if (user->empty() && !*from_stdin && terminal) *user = prompt("Username", false);
                if (user->empty()) throw pieces::error("login " + host + ": give the user name with -u");
                if (*from_stdin) {
                    bool ended = false;
                    *password = read_line(&ended);
                } else if (password->empty() && terminal) {
                    *password = prompt("Password", true);
                }
                if (password->empty())
                    throw pieces::error("login " + host + ": give the password with -p or --password-stdin");
                std::string kept_in = pieces::image::login(host, *user, *password);
                std::printf("Login succeeded: %s (stored in %s)\n", host.c_str(), kept_in.c_str());
            }};
}

command add_logout(CLI::App& app, context&) {
    auto* sub = app.add_subcommand("logout", "forget the credentials stored for a registry");
    auto registry = std::make_shared<std::string>();
    sub->add_option("registry", *registry, "HOST[:PORT] (default: docker.io)");
    return {sub, [registry] {
                std::string host = pieces::image::login_registry(*registry);
                pieces::image::logout(host);
                std::printf("Removed the credentials for %s\n", host.c_str());
            }};
}

}  // namespace pieces_cli
