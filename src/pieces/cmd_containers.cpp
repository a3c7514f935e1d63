// Container commands: run, exec, ps, stop, kill, wait, rm, logs.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/signals.h"
#include "core/container/lifecycle.h"
#include "core/image/containers.h"
#include "core/image/ps_query.h"
#include "core/image/store.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {

// The flags of pieces run whose text is checked and converted before anything is made.
struct run_texts {
    std::string memory, memory_swap, memory_reservation, cpus, cpu_shares, cpuset_cpus, cpuset_mems, pids_limit;
    std::string stop_signal, stop_timeout;
    std::vector<std::string> cap_add, cap_drop, security_opts, env_files, tmpfs, labels, label_files;
};

int64_t whole_number(const std::string& text, const std::string& flag, int64_t minimum) {
    size_t end = 0;
    int64_t n = 0;
    try {
        n = std::stoll(text, &end);
    } catch (const std::exception&) {
        end = 0;
    }
    if (end == 0 || end != text.size() || n < minimum)
        throw pieces::error(flag + " " + pieces::quote(text) + ": expected a whole number of at least " + std::to_string(minimum));
    return n;
}

int host_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) < 0) return static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
    return CPU_COUNT(&set);
}

// The text of a file a flag names; errors name the flag and the file.
std::string flag_file(const std::string& flag, const std::string& f) {
    pieces::unique_fd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw pieces::error(flag + " " + pieces::quote(f) + ": " + std::strerror(errno));
    try {
        return pieces::read_all(fd);
    } catch (const std::exception& e) {
        throw pieces::error(flag + " " + pieces::quote(f) + ": " + e.what());
    }
}

// The env files' entries, in the order given; -e comes after them and wins.
std::vector<std::string> env_file_entries(const std::vector<std::string>& files) {
    std::vector<std::string> out;
    for (const auto& f : files) {
        std::string text = flag_file("--env-file", f);
        auto entries = pieces::image::parse_env_file(text, [](const std::string& k) { return std::getenv(k.c_str()); }, f);
        out.insert(out.end(), entries.begin(), entries.end());
    }
    return out;
}

void apply_security_opt(const std::string& opt, pieces::image::run_request& r) {
    if (opt == "no-new-privileges" || opt == "no-new-privileges:true" || opt == "no-new-privileges=true") r.no_new_privileges = true;
    else if (opt == "no-new-privileges:false" || opt == "no-new-privileges=false") r.no_new_privileges = false;
    else if (opt.rfind("seccomp=", 0) == 0 || opt.rfind("seccomp:", 0) == 0) r.seccomp = pieces::image::seccomp_choice::parse(opt.substr(8));
    else
        throw pieces::error("--security-opt " + pieces::quote(opt) +
                            ": pieces knows no-new-privileges[:true|false] and seccomp=unconfined|PROFILE.json");
}

// Every Docker-style flag of run_texts into the request; throws naming the flag and the value.
void apply_run_texts(const run_texts& t, pieces::image::run_request& r) {
    using pieces::image::parse_size;
    auto& res = r.resources;
    if (!t.memory.empty()) res.memory = parse_size(t.memory, "--memory");
    if (!t.memory_swap.empty()) res.memory_swap = t.memory_swap == "-1" ? -1 : parse_size(t.memory_swap, "--memory-swap");
    if (!t.memory_reservation.empty()) res.memory_reservation = parse_size(t.memory_reservation, "--memory-reservation");
    if (!t.cpus.empty()) res.cpu_quota = pieces::image::parse_cpus(t.cpus, host_cpus());
    if (!t.cpu_shares.empty()) res.cpu_shares = whole_number(t.cpu_shares, "--cpu-shares", 0);  // 0: the default, as Docker
    if (!t.pids_limit.empty()) res.pids_limit = whole_number(t.pids_limit, "--pids-limit", -1);
    if (!t.cpuset_cpus.empty()) pieces::image::check_cpuset(t.cpuset_cpus, "--cpuset-cpus");
    if (!t.cpuset_mems.empty()) pieces::image::check_cpuset(t.cpuset_mems, "--cpuset-mems");
    res.cpuset_cpus = t.cpuset_cpus;
    res.cpuset_mems = t.cpuset_mems;
    res.check();
    for (const auto& c : t.cap_add) r.cap_add.push_back(pieces::image::capability_flag(c, "--cap-add"));
    for (const auto& c : t.cap_drop) r.cap_drop.push_back(pieces::image::capability_flag(c, "--cap-drop"));
    for (const auto& o : t.security_opts) apply_security_opt(o, r);
    for (const auto& m : t.tmpfs) r.tmpfs.push_back(pieces::image::tmpfs_mount::parse(m));
    if (!t.stop_signal.empty()) r.stop_signal = pieces::image::parse_stop_signal(t.stop_signal, "--stop-signal");
    if (!t.stop_timeout.empty()) r.stop_timeout = static_cast<int>(whole_number(t.stop_timeout, "--stop-timeout", -1));
    // Label files first, then --label: a later entry for a key wins.
    for (const auto& f : t.label_files)
        for (auto& label : pieces::image::parse_label_file(flag_file("--label-file", f), f)) r.labels.push_back(label);
    for (const auto& l : t.labels) r.labels.push_back(pieces::image::parse_label(l, "--label"));
    std::vector<std::string> env = env_file_entries(t.env_files);
    env.insert(env.end(), r.env.begin(), r.env.end());
    r.env = env;
}

// `fn` for every container named: a failure is one line and exit status 1, and the others are
// still done.
void each_container(const std::vector<std::string>& names, context& ctx, const std::function<void(const std::string&)>& fn) {
    for (const auto& n : names) {
        try {
            fn(n);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "pieces: %s\n", e.what());
            ctx.exit_code = 1;
        }
    }
}

}  // namespace

command add_run(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("run", "run a container from an image");
    auto r = std::make_shared<pieces::image::run_request>();
    auto volumes = std::make_shared<std::vector<std::string>>();
    auto entrypoint = std::make_shared<std::string>();
    auto network = std::make_shared<std::string>("host");
    auto t = std::make_shared<run_texts>();
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
    sub->add_option("--env-file", t->env_files, "K=V lines (K alone: the value here; # comments)");
    sub->add_option("--tmpfs", t->tmpfs, "a tmpfs at PATH[:OPTIONS] (nosuid,nodev,noexec and yours)");
    sub->add_option("-m,--memory", t->memory, "memory limit (bytes, or with b, k, m, g)");
    sub->add_option("--memory-swap", t->memory_swap, "memory + swap limit; -1 unlimited (default: twice --memory)");
    sub->add_option("--memory-reservation", t->memory_reservation, "memory soft limit");
    sub->add_option("--cpus", t->cpus, "number of CPUs (decimal: 1.5)");
    sub->add_option("--cpu-shares", t->cpu_shares, "relative CPU weight (default 1024)");
    sub->add_option("--cpuset-cpus", t->cpuset_cpus, "CPUs to run on (0-3,5)");
    sub->add_option("--cpuset-mems", t->cpuset_mems, "memory nodes to use (0-3,5)");
    sub->add_option("--pids-limit", t->pids_limit, "maximum number of processes (-1: unlimited)");
    sub->add_option("--cap-add", t->cap_add, "add a capability (NET_ADMIN, CAP_NET_ADMIN or ALL)");
    sub->add_option("--cap-drop", t->cap_drop, "drop a capability (or ALL)");
    sub->add_option("--security-opt", t->security_opts, "no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json");
    sub->add_flag("--privileged", r->privileged, "every capability, the host's devices, /sys writable, nothing masked, no seccomp filter");
    sub->add_option("--stop-signal", t->stop_signal, "signal pieces stop sends (default: the image's, else SIGTERM)");
    sub->add_option("-l,--label", t->labels, "a label KEY=VALUE (over the image's Labels)");
    sub->add_option("--label-file", t->label_files, "KEY=VALUE lines of labels (# comments)");
    sub->add_option("--stop-timeout", t->stop_timeout, "seconds pieces stop waits before SIGKILL (default 10; -1: no limit)");
    sub->add_option("image", r->image, "image name[:tag] or id")->required();
    sub->prefix_command();
    return {sub, [r, t, volumes, entrypoint, network, sub, &ctx] {
                apply_run_texts(*t, *r);
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
    auto no_trunc = std::make_shared<bool>(false);
    auto filters = std::make_shared<std::vector<std::string>>();
    auto format = std::make_shared<std::string>();
    sub->add_flag("-a,--all", *all, "also stopped containers");
    sub->add_flag("-q,--quiet", *quiet, "ids only");
    sub->add_flag("--no-trunc", *no_trunc, "full ids and commands");
    sub->add_option("-f,--filter", *filters, "only containers matching KEY=VALUE (id, name, label, status, ancestor)");
    sub->add_option("--format", *format, "a template: {{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.Status}} {{.Labels}} {{.Label \"k\"}}");
    return {sub, [all, quiet, no_trunc, filters, format, &ctx] {
                auto filter = pieces::image::ps_filter::parse(*filters);
                std::optional<pieces::image::ps_format> fmt;
                if (!format->empty()) fmt = pieces::image::ps_format::parse(*format);
                // Ancestors by image id: each value the store resolves, as a manifest digest.
                std::vector<std::string> ancestor_ids;
                if (!filter.ancestors().empty()) {
                    pieces::image::store s = pieces::image::store::open(ctx.root, false);
                    for (const auto& a : filter.ancestors())
                        if (auto d = s.resolve(a)) ancestor_ids.push_back(d->str());
                }
                auto list = pieces::image::list_containers(ctx.root);
                if (!*quiet && !fmt)
                    std::printf("%-12s  %-20s  %-24s  %-14s  %-20s  %s\n", "CONTAINER ID", "NAME", "IMAGE", "STATUS", "CREATED", "COMMAND");
                // A status filter other than running shows stopped containers too, as with -a.
                bool show_all = *all || filter.values.count("status");
                for (const auto& c : list) {
                    if ((!show_all && !pieces::image::is_live(c.state)) || !filter.matches(c, ancestor_ids)) continue;
                    std::string id = *no_trunc ? c.id : c.id.substr(0, 12);
                    if (*quiet) std::printf("%s\n", id.c_str());
                    else if (fmt) std::printf("%s\n", fmt->render(c, *no_trunc).c_str());
                    else
                        std::printf("%-12s  %-20s  %-24s  %-14s  %-20s  %s\n", id.c_str(), c.name.c_str(), c.image.c_str(),
                                    c.status.c_str(), c.created.c_str(), c.command.c_str());
                }
            }};
}

command add_stop(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("stop", "stop containers: their stop signal (SIGTERM unless set), then SIGKILL after the timeout");
    auto names = std::make_shared<std::vector<std::string>>();
    auto timeout = std::make_shared<std::optional<int>>();
    sub->add_option("-t,--time", *timeout, "seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10)");
    sub->add_option("container", *names, "container names or ids")->required();
    return {sub, [names, timeout, &ctx] {
                for (const auto& n : *names) {
                    pieces::image::stop_container(ctx.root, n, *timeout);
                    std::printf("%s\n", n.c_str());
                }
            }};
}

command add_kill(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("kill", "send a signal (SIGKILL unless given) to running containers");
    auto names = std::make_shared<std::vector<std::string>>();
    auto signal = std::make_shared<std::string>("SIGKILL");
    sub->add_option("-s,--signal", *signal, "signal name or number (KILL, SIGHUP, 9)");
    sub->add_option("container", *names, "container names or ids")->required();
    return {sub, [names, signal, &ctx] {
                int sig = pieces::image::parse_stop_signal(*signal, "--signal");
                each_container(*names, ctx, [&](const std::string& n) {
                    pieces::image::kill_container(ctx.root, n, sig);
                    std::printf("%s\n", n.c_str());
                });
            }};
}

command add_wait(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("wait", "wait for containers to end and print their exit statuses");
    auto names = std::make_shared<std::vector<std::string>>();
    sub->add_option("container", *names, "container names or ids")->required();
    return {sub, [names, &ctx] {
                each_container(*names, ctx, [&](const std::string& n) {
                    std::printf("%d\n", pieces::image::wait_container(ctx.root, n));
                    std::fflush(stdout);
                });
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
