// Containers made from images, as `pieces` keeps them: a directory per container in the store
// (bundle config.json, overlay rootfs, upper/work directories, a record and a log), run
// through the core lifecycle in-process.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/image/image.h"
#include "core/image/run_options.h"
#include "core/image/seccomp_profile.h"

namespace pieces::image {

/// A bind mount asked for with -v SRC:DST[:ro].
struct volume {
    std::string source, destination;
    bool read_only = false;
    /// Parses "SRC:DST[:ro|rw]"; SRC must be an absolute host path.
    static volume parse(const std::string& text);
};

/// How to run an image (pieces run's flags).
struct run_request {
    std::string image;                           ///< name[:tag] or id
    std::optional<std::vector<std::string>> entrypoint;  ///< --entrypoint (replaces the image's; clears its Cmd)
    std::vector<std::string> cmd;                ///< arguments after the image (replace its Cmd)
    std::vector<std::string> env;                ///< -e K=V (K alone: the host's value)
    std::vector<volume> volumes;
    std::string workdir, user, hostname, name;
    bool tty = false, interactive = false, read_only = false, detach = false, remove = false;
    bool host_network = true;                    ///< --network host (default) or none
    resource_limits resources;                   ///< --memory, --cpus, --pids-limit ... (linux.resources)
    std::vector<std::string> cap_add, cap_drop;  ///< normalised names ("CAP_NET_ADMIN", "ALL")
    bool no_new_privileges = false;              ///< --security-opt no-new-privileges
    bool privileged = false;                     ///< --privileged: every capability, host devices, nothing masked, no seccomp
    seccomp_choice seccomp;                      ///< --security-opt seccomp=unconfined|PROFILE (else our default profile)
    std::vector<tmpfs_mount> tmpfs;              ///< --tmpfs PATH[:OPTIONS]
    std::optional<int> stop_signal;              ///< --stop-signal (else the image's StopSignal, else SIGTERM)
    std::optional<int> stop_timeout;             ///< --stop-timeout seconds for pieces stop (else 10)
    std::vector<std::pair<std::string, std::string>> labels;  ///< --label-file then --label entries (a later one wins)
};

/// The container's labels: the image's Labels with `r.labels` over them.
std::map<std::string, std::string> container_labels(const nlohmann::json& runtime, const run_request& r);

/// The config.json for running `img` with `r` on the rootfs at `rootfs` (users named in
/// r.user or the image are looked up in the rootfs's /etc/passwd and /etc/group). With a
/// `volumes_dir`, the image's Volumes are bind mounts of directories there (image_volumes).
nlohmann::json bundle_config(const image& img, const run_request& r, const std::string& rootfs, const std::string& id,
                             const std::string& volumes_dir = "");

/// The image's Volumes that `r` does not cover with a -v or --tmpfs at the same path, as
/// (destination in the container, directory under `volumes_dir` that holds it); none without
/// a `volumes_dir`.
std::vector<std::pair<std::string, std::string>> image_volumes(const nlohmann::json& runtime, const run_request& r,
                                                               const std::string& volumes_dir);

/// The OCI process.user for "user[:group]" (names or numbers) as the rootfs's /etc/passwd and
/// /etc/group say, with the primary and the member groups as additional gids.
nlohmann::json resolve_user(const std::string& user, const std::string& rootfs);

/// The OCI process args for an image's Entrypoint/Cmd with `r`'s overrides, as Docker combines them.
std::vector<std::string> command_line(const nlohmann::json& runtime, const run_request& r);

/// Where pieces keeps containers and the runtime state under a store root.
std::string containers_dir(const std::string& store_root);
std::string state_root(const std::string& store_root);

/// What `pieces ps` shows of one container.
struct container_info {
    std::string id, name, image, command, created;
    std::string status;    ///< as ps shows it: "running", "exited (0)"
    std::string state;     ///< created, running, paused or exited
    std::string image_id;  ///< the image's manifest digest
    std::map<std::string, std::string> labels;
    int exit_code = -1;
    pid_t pid = 0;
};

/// Runs a container from an image. In the foreground: returns the container's exit status
/// (stdio is the caller's; -t relays a terminal); with detach: starts it under a small monitor
/// process that records its exit, prints nothing, and returns its id through `id_out`.
int run_container(const std::string& store_root, const run_request& r, std::string* id_out = nullptr);

/// Whether a container in this runtime status ("created", "running", "paused") still has its
/// init process.
bool is_live(const std::string& status);

/// Every container, newest first.
std::vector<container_info> list_containers(const std::string& store_root);
/// What find_container throws when no container has that name, id or id prefix.
struct no_such_container : error {
    using error::error;
};

/// A container by id, id prefix or name.
container_info find_container(const std::string& store_root, const std::string& ref);
/// Sends the container's stop signal (--stop-signal, else the image's StopSignal, else
/// SIGTERM), waits up to `timeout` seconds (else its --stop-timeout, else 10; negative: no
/// limit), then SIGKILL.
void stop_container(const std::string& store_root, const std::string& ref, std::optional<int> timeout);
/// Sends `sig` to a running (or paused) container's init; throws naming it when it is not running.
void kill_container(const std::string& store_root, const std::string& ref, int sig);
/// Blocks until the container has ended and its exit status is recorded, and returns that
/// status (at once for one that ended before).
int wait_container(const std::string& store_root, const std::string& ref);
/// Docker's inspect document for one container: Id, Name, Created, Image, State, Config,
/// HostConfig, Mounts.
nlohmann::json inspect_container(const std::string& store_root, const std::string& ref);
/// Removes a stopped container (running ones with `force`: killed first).
void remove_container(const std::string& store_root, const std::string& ref, bool force);
/// The log file of a detached container.
std::string log_path(const std::string& store_root, const std::string& ref);
/// The images containers were made from (manifest digests), for rmi's check.
std::vector<std::string> images_in_use(const std::string& store_root);

}  // namespace pieces::image
