// The lifecycle verbs over a container's state directory: create, start, run, kill, delete, state.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::container {

/// What `create` and `run` are asked.
struct create_options {
    std::string root;            ///< --root: where state directories live
    std::string id;
    std::string bundle = ".";
    std::string pid_file;
    std::string console_socket;
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
    bool systemd_cgroup = false;  ///< cgroupsPath is slice:prefix:name (--systemd-cgroup)
    int console_fd = -1;          ///< a connected socket for the pty master instead of --console-socket
};

/// Sets a container up and leaves its init parked until `start`. Returns the init's pid.
/// On failure nothing is left: no state directory, cgroup or process.
pid_t create(const create_options& opts);

/// Lets a created container's init exec the user's program, then runs poststart hooks.
void start(const std::string& root, const std::string& id);

/// What `run` does after starting.
struct run_options {
    bool detach = false;
    bool keep = false;          ///< keep the stopped container instead of deleting it
    bool no_subreaper = false;
};

/// create + start; in the foreground waits, forwards signals, deletes (unless keep) and returns
/// the container's exit status (128+N when killed by signal N). Detached returns 0 at once.
int run(const create_options& opts, const run_options& ropts);

/// Sends `sig` to the init, or with `all` to every process of the container.
void kill(const std::string& root, const std::string& id, int sig, bool all);

/// Deletes a stopped (or created) container: poststop hooks, cgroup, state. `force` kills a
/// running one first.
void remove(const std::string& root, const std::string& id, bool force);

/// Freezes every process of a running container (status "paused").
void pause(const std::string& root, const std::string& id);
/// Thaws a paused container.
void resume(const std::string& root, const std::string& id);

/// Writes new resource limits (linux.resources form) into a container's cgroups.
void update(const std::string& root, const std::string& id, const nlohmann::json& resources);

/// One stats event of a running container: {"type":"stats","id":...,"data":{cpu, memory, pids, ...}}.
nlohmann::json stats_event(const std::string& root, const std::string& id);

/// What `exec` is asked: a process file, or args plus changes to the container's process.
struct exec_options {
    std::string root, id;
    std::string process_file;          ///< --process: a config.json "process" object
    std::vector<std::string> args;
    bool tty = false;
    std::string console_socket;
    std::vector<std::string> env;      ///< K=V, added to (or replacing in) the container's env
    std::string user;                  ///< uid[:gid]
    std::vector<unsigned> additional_gids;
    std::string cwd;
    std::vector<std::string> caps;     ///< added to every capability set
    bool no_new_privs = false;
    bool detach = false;
    std::string pid_file;
    int preserve_fds = 0;
    bool ignore_paused = false;
    /// --cgroup: "[controller[,controller]:]path" of existing sub-cgroups to run the process in.
    std::vector<std::string> sub_cgroups;
    std::string apparmor_profile;      ///< --apparmor
    std::string process_label;         ///< --process-label (SELinux)
};

/// Runs a new process in a running container: its namespaces (user first), its cgroups, the
/// process's capabilities, rlimits, no_new_privs and seccomp. Returns the process's exit
/// status, or 0 at once with `detach`.
int exec(const exec_options& opts);

/// The OCI state document of a container.
nlohmann::json state(const std::string& root, const std::string& id);

/// The state of every container under root.
std::vector<nlohmann::json> list(const std::string& root);

/// The host pids of the container's processes.
std::vector<pid_t> pids(const std::string& root, const std::string& id);

}  // namespace pieces::container
