// The values of `pieces run`'s Docker-style flags, parsed and checked: sizes, CPUs, signals,
// env files, capabilities, tmpfs mounts and resource limits. Pure functions; each error names
// the flag and the value ("--memory \"12x\": ...").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::image {

/// A size as Docker reads it: "1024", "64m", "1.5g", "512kb", "2GiB" (b, k, m, g, t, p; powers
/// of 1024; case-insensitive). Throws naming `flag` on anything else.
int64_t parse_size(const std::string& text, const std::string& flag);

/// --cpus "1.5": the CFS quota in microseconds for a period of 100000 (150000). Must be above
/// zero and at most `host_cpus`.
int64_t parse_cpus(const std::string& text, int host_cpus);

/// A CPU or memory-node list as cpuset takes it: "0", "0-3", "0,2-3". Throws naming `flag`.
void check_cpuset(const std::string& text, const std::string& flag);

/// A signal by name or number ("SIGUSR1", "USR1", "10"), for `flag`.
int parse_stop_signal(const std::string& text, const std::string& flag);

/// The K=V entries of an env file as Docker reads one: a line is K=V (V kept verbatim), or K
/// alone for `lookup(K)`'s value (left out when that is null); blank lines and lines starting
/// with # are skipped, leading blanks ignored. `file` names the file in errors.
std::vector<std::string> parse_env_file(const std::string& text, const std::function<const char*(const std::string&)>& lookup,
                                        const std::string& file);

/// A label as --label gives it: "KEY=VALUE", or "KEY" alone for an empty value. Throws naming
/// `flag` when there is no key.
std::pair<std::string, std::string> parse_label(const std::string& text, const std::string& flag);

/// The labels of a --label-file, in order: a line is KEY=VALUE (the value verbatim) or KEY alone
/// (empty value); blank lines and lines starting with # are skipped, leading blanks ignored.
/// `file` names the file in errors.
std::vector<std::pair<std::string, std::string>> parse_label_file(const std::string& text, const std::string& file);

/// "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "all" -> "ALL". Throws
/// naming `flag` for a capability this code does not know.
std::string capability_flag(const std::string& text, const std::string& flag);

/// The capability set Docker gives for `base` with --cap-add/--cap-drop (normalised names):
/// add ALL gives `all` minus the drops; drop ALL gives only the adds; else base minus drops plus adds.
std::vector<std::string> effective_capabilities(const std::vector<std::string>& base, const std::vector<std::string>& all,
                                                const std::vector<std::string>& add, const std::vector<std::string>& drop);

/// A tmpfs asked for with --tmpfs PATH[:OPTIONS].
struct tmpfs_mount {
    std::string destination;
    std::vector<std::string> options;  ///< nosuid,nodev,noexec first (Docker's defaults), then the user's
    /// Parses "PATH[:opt,opt...]"; PATH must be absolute.
    static tmpfs_mount parse(const std::string& text);
};

/// The resource flags of pieces run, as given (bytes, CFS quota, ...).
struct resource_limits {
    std::optional<int64_t> memory, memory_swap, memory_reservation;  ///< swap: memory+swap, -1 unlimited
    std::optional<int64_t> cpu_quota;                                ///< from --cpus, period 100000
    std::optional<int64_t> cpu_shares, pids_limit;
    std::string cpuset_cpus, cpuset_mems;

    /// Docker's checks between the memory flags (--memory-swap needs --memory and is not below
    /// it, --memory at least 6 MiB and not below --memory-reservation).
    void check() const;
    /// Adds what was asked to an OCI linux.resources object, with Docker's defaults: no
    /// --memory-swap with --memory allows as much swap as memory (swap = 2 x memory).
    void apply(nlohmann::json& resources) const;
    bool empty() const;
};

}  // namespace pieces::image
