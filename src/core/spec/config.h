// The OCI runtime-spec config.json (Linux), as typed structs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::spec {

/// The runtime-spec version this code implements.
inline constexpr const char* oci_version = "1.2.0";

struct id_mapping {
    uint32_t container_id = 0;
    uint32_t host_id = 0;
    uint32_t size = 0;
};

struct mount {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
};

struct rlimit {
    std::string name;  // "RLIMIT_NOFILE"
    int resource = 0;  // RLIMIT_NOFILE
    uint64_t soft = 0;
    uint64_t hard = 0;
};

/// Capability sets as numbers (CAP_*), parsed from names.
struct capabilities {
    std::vector<int> bounding, effective, permitted, inheritable, ambient;
};

struct user {
    uid_t uid = 0;
    gid_t gid = 0;
    std::optional<mode_t> umask;
    std::vector<gid_t> additional_gids;
};

struct process {
    bool terminal = false;
    std::optional<std::pair<unsigned, unsigned>> console_size;  // height, width
    struct user user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd = "/";
    std::optional<struct capabilities> capabilities;
    std::vector<rlimit> rlimits;
    bool no_new_privileges = false;
    std::optional<int> oom_score_adj;
    std::string apparmor_profile;
    std::string selinux_label;
};

struct hook {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<int> timeout;  // seconds
};

struct hooks {
    std::vector<hook> prestart, create_runtime, create_container, start_container, poststart, poststop;
};

enum class ns_type { pid, network, mount, ipc, uts, user, cgroup, time };

struct namespace_entry {
    ns_type type;
    std::string path;  // empty: create a new one; otherwise join it
};

struct device {
    char type = 'c';  // c, b, u or p
    std::string path;
    int64_t major = 0;
    int64_t minor = 0;
    std::optional<mode_t> file_mode;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

struct time_offset {
    int64_t secs = 0;
    uint32_t nanosecs = 0;
};

struct linux_config {
    std::vector<namespace_entry> namespaces;
    std::vector<id_mapping> uid_mappings, gid_mappings;
    std::map<std::string, time_offset> time_offsets;  // "monotonic", "boottime"
    std::vector<device> devices;
    std::optional<std::string> cgroups_path;
    nlohmann::json resources;  // kept as given; applied by the cgroup layer
    nlohmann::json seccomp;    // kept as given; compiled by the seccomp layer
    std::string rootfs_propagation;
    std::vector<std::string> masked_paths, readonly_paths;
    std::map<std::string, std::string> sysctl;
    std::string mount_label;

    /// The entry for `t`, or nullptr when the config does not ask for that namespace.
    const namespace_entry* find(ns_type t) const;
};

struct config {
    std::string oci_version;
    std::optional<struct process> process;
    std::string root_path;
    bool root_readonly = false;
    std::string hostname;
    std::string domainname;
    std::vector<struct mount> mounts;
    struct hooks hooks;
    std::map<std::string, std::string> annotations;
    linux_config linux;
    nlohmann::json raw;  ///< the document as given, for what is kept for later (exec's defaults)
};

/// Parses a list of hooks (as in config.json's "hooks.poststart"); errors name `where`.
std::vector<hook> parse_hooks(const nlohmann::json& j, const std::string& where);
/// Hooks back to their config.json form.
nlohmann::json hooks_to_json(const std::vector<hook>& hooks);

/// Parses a config.json "process" object; errors name `where`.
process parse_process_json(const nlohmann::json& j, const std::string& where);

/// Parses and validates a config.json document; errors name the field ("linux.namespaces[2].type: ...").
config parse_config(const nlohmann::json& doc);
/// Reads and parses `bundle/config.json`; errors name the file.
config load_config(const std::string& bundle);

/// The name of a namespace type as config.json spells it ("network").
const char* ns_type_name(ns_type t);
/// The CLONE_NEW* flag for a namespace type.
int ns_clone_flag(ns_type t);
/// The /proc/PID/ns/ entry for a namespace type ("net").
const char* ns_proc_name(ns_type t);

/// Capability number for "CAP_SYS_ADMIN", or -1 when unknown.
int capability_from_name(std::string_view name);
/// "CAP_SYS_ADMIN" for a capability number.
std::string capability_name(int cap);
/// The highest capability number this code knows.
int last_known_capability();

/// RLIMIT_* number for "RLIMIT_NOFILE", or -1 when unknown.
int rlimit_from_name(std::string_view name);

}  // namespace pieces::spec
