// Translation of OCI mount options ("ro", "nosuid", "rbind", "size=64m") into mount(2) arguments.
#pragma once

#include <string>
#include <vector>

namespace pieces::linux_ {

/// The mount(2) arguments that a list of OCI mount options means.
struct mount_options {
    unsigned long flags = 0;              ///< MS_* flags to set
    unsigned long clear = 0;              ///< MS_* flags an option turned off ("rw", "suid")
    std::vector<unsigned long> propagation;  ///< MS_SHARED/MS_SLAVE/... (with MS_REC), applied after
    bool bind = false;                    ///< "bind" or "rbind" (MS_BIND, MS_REC for rbind)
    bool recursive_readonly = false;      ///< "rro": read-only on every submount (mount_setattr)
    bool tmpcopyup = false;               ///< "tmpcopyup": a tmpfs starts with what it covers
    std::string data;                     ///< everything else, comma-joined, for the filesystem
};

/// Every option name parse_mount_options gives a meaning to (for `features`).
std::vector<std::string> known_mount_options();

/// Parses OCI options; anything that is not a known flag becomes filesystem data.
mount_options parse_mount_options(const std::vector<std::string>& options);

}  // namespace pieces::linux_
