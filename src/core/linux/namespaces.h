// Namespaces: id mappings, time offsets, joining by path, hostname and sysctls.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "core/spec/config.h"

namespace pieces::linux_ {

/// Writes uid_map and gid_map of `pid` from the config's mappings.
void write_id_mappings(pid_t pid, const spec::linux_config& l);

/// Writes /proc/self/timens_offsets; call after unshare(CLONE_NEWTIME), before any child exists.
void write_time_offsets(const std::map<std::string, spec::time_offset>& offsets);

/// A namespace file opened for setns, with its type.
struct ns_handle {
    spec::ns_type type;
    unique_fd fd;
};

/// Opens every namespace the config names by path, user first, checking each is of its type.
std::vector<ns_handle> open_joined_namespaces(const spec::linux_config& l);

/// Joins the opened namespaces in order.
void join_namespaces(const std::vector<ns_handle>& handles);

/// Sets hostname and domainname when the config gives them.
void set_host_and_domain(const spec::config& cfg);

/// Writes each linux.sysctl value to /proc/sys.
void apply_sysctls(const std::map<std::string, std::string>& sysctl);

}  // namespace pieces::linux_
