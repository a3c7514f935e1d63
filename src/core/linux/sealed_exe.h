// Running the runtime from a sealed in-memory copy of its own binary.
//
// A process of ours that becomes visible inside a container (the process `exec` starts, before
// it execs the user's program; an init that joins an existing pid namespace) can be reached
// through /proc/PID/exe by a container process holding CAP_SYS_PTRACE. Were that link our
// binary on the host, the container could open it and, once we exit, write to it
// (CVE-2019-5736). Run from a sealed memfd instead, the link names a copy nobody can change.
#pragma once

namespace pieces::linux_ {

/// True when this process executes a sealed copy: a memfd that can no longer be written,
/// grown, shrunk or unsealed.
bool running_sealed();

/// Makes sure this process runs from a sealed copy: unless it already does, copies the loaded
/// part of its binary into a memfd, seals it and re-executes it with the same arguments and
/// environment (descriptors not marked close-on-exec stay open). Returns only in the copy.
void ensure_running_sealed();

}  // namespace pieces::linux_
