#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"
#include "core/base/procfs.h"
#include "core/container/internal.h"
#include "core/container/lifecycle.h"
#include "core/linux/lsm.h"
#include "core/linux/sealed_exe.h"
#include "core/linux/seccomp.h"
#include "core/linux/seccomp_cache.h"
#include "core/base/socket.h"
#include "core/cgroup/cgroup.h"
#include "core/cgroup/systemd.h"
#include "core/proc/spawn.h"
#include "core/spec/config.h"

namespace pieces::container {
namespace {

std::string absolute_bundle(const std::string& bundle) {
    char real[PATH_MAX];
    if (!::realpath(bundle.c_str(), real)) throw_errno("bundle", quote(bundle));
    struct stat st {};
    if (::stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) throw error("bundle " + quote(bundle) + " is not a directory");
    return real;
}

void check_config_for_create(const spec::config& cfg, const create_options& opts, const std::string& bundle) {
    if (!cfg.process) throw error("config.json: process is required to create a container");
    if (!cfg.linux.find(spec::ns_type::mount)) throw error("config.json: linux.namespaces: a mount namespace is required");
    with_context("config.json", [&] { linux_::check_lsm_supported(*cfg.process, cfg.linux.mount_label); });
    if (cfg.process->terminal && opts.console_socket.empty() && opts.console_fd < 0)
        throw error("config.json: process.terminal is true but no --console-socket was given");
    if (!cfg.process->terminal && !opts.console_socket.empty())
        throw error("--console-socket given but process.terminal is false");
    std::string rootfs = cfg.root_path[0] == '/' ? cfg.root_path : bundle + "/" + cfg.root_path;
    struct stat st {};
    if (::stat(rootfs.c_str(), &st) < 0) throw_errno("rootfs", quote(rootfs));
    if (!S_ISDIR(st.st_mode)) throw error("rootfs " + quote(rootfs) + " is not a directory");
}

// Has systemd start the container's unit with `init` in it and returns the cgroup the unit
// got, in every hierarchy. `unit` is set as soon as the unit runs, so that a failure after that
// can stop it.
cgroup::group start_unit(cgroup::systemd::manager& systemd, const spec::config& cfg, const std::string& id, pid_t init,
                         const std::vector<cgroup::hierarchy>& layout, std::string& unit) {
    const std::string& path = cfg.linux.cgroups_path.value_or("");
    cgroup::systemd::unit_name name = cgroup::systemd::unit_for(path, id);
    bool unified = !cgroup::has_v1_hierarchies(layout);
    systemd.start_transient(name.unit, cgroup::systemd::unit_properties(name, init, id, cfg.linux.resources, unified));
    unit = name.unit;
    // Where systemd put the init, as seen from here (systemd is asked only for a slice, which
    // the init joins afterwards). The hierarchies systemd leaves alone get the same path.
    std::string where = name.is_slice() ? systemd.control_group(unit) : cgroup::systemd::tracked_cgroup(init, layout);
    // Never a hierarchy's root, nor above this namespace's: those are not ours.
    if (where.empty() || where == "/" || where.rfind("/..", 0) == 0)
        throw error("systemd placed the container in " + quote(where) +
                    ", outside this cgroup namespace: run puncker in systemd's cgroup namespace");
    // A scope's directory carries its name; any other is not the unit's.
    if (!name.is_slice() && !where.ends_with("/" + unit))
        throw error("systemd placed the container in " + quote(where) + ", not in " + unit);
    return cgroup::group::for_container(where, id);
}

}  // namespace

nlohmann::json hook_state(const std::string& id, const char* status, pid_t pid, const std::string& bundle,
                          const std::map<std::string, std::string>& annotations) {
    nlohmann::json j = {{"ociVersion", spec::oci_version}, {"id", id}, {"status", status}, {"bundle", bundle}};
    if (pid > 0) j["pid"] = pid;
    j["annotations"] = annotations;
    return j;
}

created_container create_container(const create_options& opts) {
    return with_context("create container " + opts.id, [&] {
        std::string bundle = absolute_bundle(opts.bundle);
        spec::config cfg = spec::load_config(bundle);
        check_config_for_create(cfg, opts, bundle);
        validate_id(opts.id);
        // Without a pid namespace of its own, the init is visible to processes that are not its
        // children (another container's, in a shared namespace) while it is still us: run from
        // a sealed copy then (CVE-2019-5736). A fresh pid namespace holds the init alone.
        const spec::namespace_entry* pidns = cfg.linux.find(spec::ns_type::pid);
        if (!pidns || !pidns->path.empty()) linux_::ensure_running_sealed();

        // Checked before anything exists: a refused cgroupsPath leaves nothing behind.
        cgroup::group cg = cgroup::group::for_container(cfg.linux.cgroups_path, opts.id, opts.systemd_cgroup);
        state_dir dir = state_dir::create(opts.root, opts.id);
        // Where systemd runs, it makes the cgroup as a unit of its own; elsewhere the same path
        // is made on cgroupfs directly.
        cgroup::systemd::manager* systemd = nullptr;
        std::string unit;
        pid_t pid = 0;
        try {
            if (::mkfifo(dir.fifo_path().c_str(), 0622) < 0) throw_errno("mkfifo", quote(dir.fifo_path()));
            // Read-write, so the open does not wait for a peer; the init inherits it and blocks
            // reading until `start` writes.
            unique_fd fifo = open_path(dir.fifo_path(), O_RDWR);
            unique_fd console;
            if (!opts.console_socket.empty()) console = connect_unix_socket(opts.console_socket);

            proc::init_request req;
            req.cfg = &cfg;
            req.id = opts.id;
            req.bundle = bundle;
            req.exec_fifo = fifo;
            req.console_socket = console ? borrowed_fd(console) : borrowed_fd(-1);
            if (!console && cfg.process->terminal) req.console_socket = opts.console_fd;
            req.no_pivot = opts.no_pivot;
            req.no_new_keyring = opts.no_new_keyring;
            req.preserve_fds = opts.preserve_fds;
            linux_::seccomp_program seccomp;
            if (!cfg.linux.seccomp.is_null()) {
                seccomp = linux_::compile_seccomp_cached(cfg.linux.seccomp, linux_::seccomp_cache_dir(opts.root));
                req.seccomp = &seccomp;
            }
            proc::spawn_hooks hooks;
            hooks.state_json = [&](pid_t init) { return hook_state(opts.id, "creating", init, bundle, cfg.annotations).dump(); };
            std::vector<cgroup::setting> resources = cg.settings(cfg.linux.resources);
            std::vector<cgroup::hierarchy> cg_layout = cg.layout();
            bool via_systemd = opts.systemd_cgroup && cgroup::systemd::booted();
            // Ours only once systemd has started the unit: a refused unit may be another's.
            if (via_systemd) cg = cgroup::group();
            hooks.join_cgroup = [&](pid_t init) {
                if (via_systemd) {
                    systemd = &cgroup::systemd::manager::connection();
                    cg = start_unit(*systemd, cfg, opts.id, init, cg_layout, unit);
                }
                cg.create_and_join(init, resources);
            };
            pid = proc::spawn_init(req, hooks);

            saved_state s;
            s.id = opts.id;
            s.pid = pid;
            auto st = procfs::stat(pid);
            if (!st) throw error("init (pid " + std::to_string(pid) + ") exited during setup");
            s.start_time = st->start_time;
            s.bundle = bundle;
            s.rootfs = cfg.root_path[0] == '/' ? cfg.root_path : bundle + "/" + cfg.root_path;
            s.created = log::rfc3339_now();
            s.annotations = cfg.annotations;
            s.cgroup_dirs = cg.dirs();
            s.systemd_unit = unit;
            s.hooks = nlohmann::json::object();
            s.hooks["poststart"] = spec::hooks_to_json(cfg.hooks.poststart);
            s.hooks["poststop"] = spec::hooks_to_json(cfg.hooks.poststop);
            s.exec_defaults = {{"process", cfg.raw.value("process", nlohmann::json::object())},
                               {"seccomp", cfg.linux.seccomp}};
            dir.save(s);
            if (!opts.pid_file.empty()) write_file_atomic(opts.pid_file, std::to_string(pid), 0644);
        } catch (...) {
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
            try {
                if (systemd && !unit.empty()) systemd->stop(unit);
            } catch (const std::exception& e) {
                log::warning(e.what());
            }
            try {
                cg.destroy();
            } catch (const std::exception& e) {
                log::warning(e.what());
            }
            dir.remove();
            throw;
        }
        return created_container{pid, std::move(dir), cfg.process->terminal};
    });
}

pid_t create(const create_options& opts) { return create_container(opts).pid; }

}  // namespace pieces::container
