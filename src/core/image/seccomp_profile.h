// The seccomp filter `pieces run` (and a build's RUN) gives a container: our own default
// profile, none, or a profile file in Docker's format translated to OCI linux.seccomp.
// Design and list: docs/security.md, "The default seccomp profile of pieces run".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::image {

/// A kernel release as "major.minor", for rules that depend on it.
struct kernel_version {
    int major = 0, minor = 0;
    /// "6.1.0-18-amd64" -> {6, 1}; {0, 0} when it does not start with two numbers.
    static kernel_version parse(const std::string& release);
    /// The running kernel's (uname).
    static kernel_version running();
    bool at_least(kernel_version other) const { return major != other.major ? major > other.major : minor >= other.minor; }
};

/// What --security-opt seccomp=... asked for.
struct seccomp_choice {
    enum class kind { builtin, unconfined, file } mode = kind::builtin;
    std::string path;         ///< the profile file (kind::file)
    nlohmann::json profile;   ///< its content, parsed
    /// "unconfined" or the path of a profile file (read and parsed here; errors name the file).
    static seccomp_choice parse(const std::string& value);
};

/// The SCMP_ARCH_* names of the architectures this build's containers may run: the native
/// one first, then those its kernel also runs (x86_64: i386 and x32; aarch64: arm).
std::vector<std::string> seccomp_architectures();

/// Our default profile as OCI linux.seccomp for a container holding `caps` (normalised names,
/// "CAP_SYS_ADMIN"): syscalls the capabilities govern are allowed when the container has them.
nlohmann::json default_seccomp_profile(const std::vector<std::string>& caps, kernel_version kernel = kernel_version::running());

/// A Docker-format profile (defaultAction, defaultErrnoRet, architectures or archMap, syscalls
/// with name/names, action, errnoRet, args, includes/excludes of caps, arches and minKernel) as
/// OCI linux.seccomp for a container holding `caps` on this machine. What it cannot translate
/// is an error naming the field; `where` starts each message.
nlohmann::json translate_seccomp_profile(const nlohmann::json& profile, const std::vector<std::string>& caps,
                                         const std::string& where, kernel_version kernel = kernel_version::running());

/// The linux.seccomp a container gets: none when unconfined, or privileged without a profile
/// file (as Docker); a file's profile translated and compiled once so that its errors show
/// now, naming the file; else the default profile.
std::optional<nlohmann::json> container_seccomp(const seccomp_choice& choice, const std::vector<std::string>& caps, bool privileged);

}  // namespace pieces::image
