// Image references as people write them ("alpine", "user/app:1", "localhost:5000/x@sha256:..."),
// normalised the way Docker does, and the API host a registry is reached at.
#pragma once

#include <string>
#include <string_view>

namespace pieces::image {

/// A parsed, normalised image reference.
struct reference {
    std::string registry;    ///< "docker.io", "localhost:5000", "ghcr.io"
    std::string repository;  ///< "library/alpine", "user/app"
    std::string tag;         ///< "latest" when neither tag nor digest was given; empty for a bare digest reference
    std::string digest;      ///< "sha256:<hex>" or empty

    /// Parses `text`; throws one line naming the text and what is wrong with it.
    static reference parse(std::string_view text);
    /// True when `text` starts with a registry host ("host:5000/x", "ghcr.io/x", "localhost/x"),
    /// false for a Docker Hub name written short ("alpine", "user/app") or a local name.
    static bool names_registry(std::string_view text);

    /// The full form: "docker.io/library/alpine:3.18", "host:5000/x@sha256:...".
    std::string str() const;
    /// The name the local store keeps the image under: Docker's short form for Docker Hub
    /// ("alpine:3.18", "user/app:1"), the full form elsewhere ("127.0.0.1:5000/bb:1"). Empty for
    /// a reference by digest alone (such images are kept by id).
    std::string store_name() const;
    /// What the manifest is fetched by: the digest when there is one, else the tag.
    std::string manifest_ref() const { return digest.empty() ? tag : digest; }
    /// The host:port the registry's API answers at ("registry-1.docker.io" for docker.io).
    std::string api_host() const;
    /// True for hosts on the loopback interface ("localhost", "127.x.y.z", "[::1]"), with any port.
    bool is_loopback() const;
};

/// Docker Hub's registry name in references.
inline constexpr const char* docker_hub = "docker.io";

}  // namespace pieces::image
