// state, list and ps: commands that read and report.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/container/features.h"
#include "core/container/lifecycle.h"
#include "puncker/commands.h"

namespace puncker {
namespace {

// Columns padded like a tab writer: each at least 12 wide, one space past its longest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size(); ++i) {
            if (widths.size() <= i) widths.push_back(12);
            widths[i] = std::max(widths[i], r[i].size() + 1);
        }
    std::string out;
    for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) {
            out += r[i];
            if (i + 1 < r.size()) out.append(widths[i] - r[i].size(), ' ');
        }
        out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
}

// Runs the host's ps with `args` and keeps the header and the lines of `pids`.
void print_ps_table(const std::vector<pid_t>& pids, const std::vector<std::string>& ps_args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) < 0) pieces::throw_errno("pipe");
    pieces::unique_fd r(out[0]), w(out[1]);
    std::vector<std::string> args = {"ps"};
    args.insert(args.end(), ps_args.begin(), ps_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t child = ::fork();
    if (child < 0) pieces::throw_errno("fork");
    if (child == 0) {
        ::dup2(w.get(), 1);
        ::execvp("ps", argv.data());
        ::_exit(127);
    }
    w.reset();
    std::string text = pieces::read_all(r);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw pieces::error("ps failed: " + text);
    std::istringstream in(text);
    std::string header;
    std::getline(in, header);
    std::istringstream hs(header);
    std::string col;
    int pid_col = -1;
    for (int i = 0; hs >> col; ++i)
        if (col == "PID") pid_col = i;
    if (pid_col < 0) throw pieces::error("ps output has no PID column");
    std::string out_text = header + "\n";
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string field;
        for (int i = 0; i <= pid_col; ++i) ls >> field;
        pid_t pid = static_cast<pid_t>(std::strtol(field.c_str(), nullptr, 10));
        if (std::find(pids.begin(), pids.end(), pid) != pids.end()) out_text += line + "\n";
    }
    std::fwrite(out_text.data(), 1, out_text.size(), stdout);
}

}  // namespace

command add_features(CLI::App& app, context&) {
    auto* sub = app.add_subcommand("features", "show what this runtime supports (runtime-spec features document)");
    return {sub, [] { print_json(pieces::container::features(), 4); }};
}

command add_state(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("state", "output the state of a container");
    auto id = std::make_shared<std::string>();
    sub->add_option("id", *id, "container id")->required();
    return {sub, [id, &ctx] { print_json(pieces::container::state(ctx.root, *id), 2); }};
}

command add_list(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("list", "list containers under --root");
    auto format = std::make_shared<std::string>("table");
    auto quiet = std::make_shared<bool>(false);
    sub->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
    sub->add_flag("-q,--quiet", *quiet, "print only ids");
    return {sub, [=, &ctx] {
                auto all = pieces::container::list(ctx.root);
                if (*quiet) {
                    for (const auto& c : all) std::printf("%s\n", c["id"].get<std::string>().c_str());
                } else if (*format == "json") {
                    print_json(nlohmann::json(all), -1);
                } else {
                    std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
                    for (const auto& c : all)
                        rows.push_back({c["id"], std::to_string(c["pid"].get<int>()), c["status"], c["bundle"],
                                        c["created"], c["owner"]});
                    print_table(rows);
                }
            }};
}

command add_ps(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("ps", "list the processes of a container");
    auto format = std::make_shared<std::string>("table");
    auto id = std::make_shared<std::string>();
    sub->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
    sub->add_option("id", *id, "container id")->required();
    sub->prefix_command();
    return {sub, [=, &ctx] {
                auto pids = pieces::container::pids(ctx.root, *id);
                if (*format == "json") {
                    print_json(nlohmann::json(pids), -1);
                } else {
                    std::vector<std::string> ps_args = sub->remaining();
                    print_ps_table(pids, ps_args.empty() ? std::vector<std::string>{"-ef"} : ps_args);
                }
            }};
}

}  // namespace puncker
