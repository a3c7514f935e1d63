// Containers made from images, as `pieces` keeps them: a directory per container in the store
// (bundle config.json, overlay rootfs, upper/work directories, a record and a log), run
// through the core lifecycle in-process.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/image/image.h"

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
};

/// The config.json for running `img` with `r` on the rootfs at `rootfs` (users named in
/// r.user or the image are looked up in the rootfs's /etc/passwd and /etc/group).
nlohmann::json bundle_config(const image& img, const run_request& r, const std::string& rootfs, const std::string& id);

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
    std::string id, name, image, command, status, created;
    int exit_code = -1;
    pid_t pid = 0;
};

/// Runs a container from an image. In the foreground: returns the container's exit status
/// (stdio is the caller's; -t relays a terminal); with detach: starts it under a small monitor
/// process that records its exit, prints nothing, and returns its id through `id_out`.
int run_container(const std::string& store_root, const run_request& r, std::string* id_out = nullptr);

/// Every container, newest first.
std::vector<container_info> list_containers(const std::string& store_root);
/// A container by id, id prefix or name.
container_info find_container(const std::string& store_root, const std::string& ref);
/// Sends SIGTERM, waits up to `timeout` seconds, then SIGKILL.
void stop_container(const std::string& store_root, const std::string& ref, int timeout);
/// Removes a stopped container (running ones with `force`: killed first).
void remove_container(const std::string& store_root, const std::string& ref, bool force);
/// The log file of a detached container.
std::string log_path(const std::string& store_root, const std::string& ref);
/// The images containers were made from (manifest digests), for rmi's check.
std::vector<std::string> images_in_use(const std::string& store_root);

}  // namespace pieces::image
