// A cache of compiled seccomp filters under --root, so that containers with a profile already
// seen (Docker's default, pieces' default) skip libseccomp's compiler, which costs milliseconds
// for a profile of a few hundred syscalls. Design: docs/architecture.md, "Seccomp filter cache".
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/linux/seccomp.h"

namespace pieces::linux_ {

/// Where the compiled filters of the containers under `root` are kept: a directory whose name
/// no container id can take.
std::string seccomp_cache_dir(const std::string& root);

/// compile_seccomp through the cache in `cache_dir`: an entry holds the exact input it was
/// compiled from (the profile, our build id, libseccomp's version, the kernel), and only an
/// identical input reuses it. Entries that are not ours (owner, mode, type) or not whole are
/// ignored and replaced; the directory keeps at most `max_entries`, the least recently used
/// going first. A cache that cannot be read or written costs only the compile; with no build
/// id in our binary nothing is cached.
seccomp_program compile_seccomp_cached(const nlohmann::json& seccomp, const std::string& cache_dir,
                                       size_t max_entries = 128);

/// The GNU build id of the running program, as hex ("" when it was linked without one).
const std::string& self_build_id();

}  // namespace pieces::linux_
