// Building an image from a Piecefile: each instruction a step whose result is an image in the
// store, each step cached by its parent, its text and the content it reads.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "core/image/digest.h"

namespace pieces::build {

/// What `pieces build` is asked.
struct build_options {
    std::string store_root;
    std::string context;                              ///< the build context directory
    std::string file;                                 ///< -f; default: context/Piecefile, else context/Dockerfile
    std::string tag;                                  ///< -t NAME[:TAG]; default: from the base (see default_name)
    std::map<std::string, std::string> build_args;    ///< --build-arg K=V
    bool no_cache = false;
    std::function<void(const std::string&)> say;      ///< one progress line at a time
};

/// What a build made.
struct build_result {
    image::digest manifest;
    std::string name;  ///< normalised "name:tag"
    int steps = 0, cached = 0;
};

/// Runs the build. On failure the store keeps only what earlier steps completed (cached
/// steps), no name changes, and the error names the Piecefile line.
build_result build(const build_options& opts);

/// The name an image gets without -t: "FROM ubuntu:22.04" -> "ubuntu-22.04", "FROM alpine" ->
/// "alpine", "FROM_URL https://x/busybox-rootfs.tar.gz" -> "busybox-rootfs".
std::string default_name(const std::string& keyword, const std::string& base);

}  // namespace pieces::build
