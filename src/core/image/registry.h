// A client for the OCI distribution API (the Docker registry v2 API): the /v2/ probe, manifests
// and blobs, bearer-token and Basic authentication, plain http for insecure registries, and
// mirrors for Docker Hub. Settings come from two files described in docs/registry.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/unique_fd.h"
#include "core/image/digest.h"
#include "core/image/reference.h"

namespace pieces::image {

inline constexpr const char* media_oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* media_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* media_docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* media_docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* media_docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Per-registry settings and Docker Hub mirrors, from $PIECES_REGISTRIES_CONFIG, else
/// ~/.config/pieces/registries.json:
///   {"registries": {"HOST[:PORT]": {"insecure": true, "ca_file": "/path/ca.pem", "mirrors": ["http://..."]}}}
struct registry_settings {
    bool insecure = false;             ///< plain http (https without verification tried first)
    std::string ca_file;               ///< extra CA bundle for https
    std::vector<std::string> mirrors;  ///< base URLs tried before the registry itself
};

/// Settings for `registry` (a reference's registry name, "docker.io" for Docker Hub).
/// Loopback hosts are insecure unless the file says otherwise, as in Docker's defaults.
registry_settings settings_for(const std::string& registry);

/// "user:password" for `registry` from the Docker-compatible auth file ($PIECES_AUTH_FILE, else
/// ~/.config/pieces/auth.json: {"auths": {"HOST": {"auth": base64("user:password")}}}), if any.
std::optional<std::string> credentials_for(const std::string& registry);

/// A platform from an index, or the one wanted: "linux/arm64/v8".
struct platform {
    std::string os = "linux";
    std::string architecture;
    std::string variant;
    /// "os/arch[/variant]"; throws on anything else.
    static platform parse(const std::string& text);
    /// This machine: linux, image::oci_architecture(), and arm's usual variant.
    static platform host();
    std::string str() const;
};

/// A manifest as the registry served it.
struct fetched_manifest {
    std::string body;        ///< the exact bytes (their sha256 is the digest)
    std::string media_type;  ///< one of the four media types above or the OCI manifest's
    digest dgst;             ///< computed from the bytes
    nlohmann::json json;     ///< parsed body
    bool is_index() const;
};

/// Chooses the entry of an index or manifest list for `want`: os and architecture equal, the
/// variant equal when both name one (an exact variant preferred). Entries that are not image
/// manifests, or whose platform is unknown (attestations: "unknown/unknown"), are skipped.
/// Throws naming what the index offers when nothing fits.
nlohmann::json choose_platform(const nlohmann::json& index, const platform& want);

/// Checks a served manifest: its mediaType (when it has one) agrees with the Content-Type, and
/// the type is one we understand. Returns the media type. Throws one line otherwise.
std::string check_manifest_type(const nlohmann::json& body, const std::string& content_type);

/// Values of a WWW-Authenticate challenge: scheme ("Bearer", "Basic") and its parameters.
struct challenge {
    std::string scheme;
    std::map<std::string, std::string> params;
    static challenge parse(const std::string& header);
};

/// Bytes received so far / expected, for progress display (called from download threads).
using progress_fn = std::function<void(uint64_t done, uint64_t total)>;

/// One repository on one registry (or one of its mirrors). Blob downloads may run on several
/// threads at once; each call uses its own connection.
class registry_client {
public:
    /// Takes the bytes of a successful (2xx) response as they arrive, with its status (200, 206);
    /// false stops the transfer.
    using body_sink = std::function<bool(std::string_view data, long status)>;

    explicit registry_client(reference ref);
    ~registry_client();
    registry_client(const registry_client&) = delete;
    registry_client& operator=(const registry_client&) = delete;

    /// Fetches the manifest `ref` (a tag or a digest), trying mirrors first for Docker Hub.
    /// A digest `ref` is checked against the bytes.
    fetched_manifest manifest(const std::string& ref);
    /// Streams the blob `d` of `size` bytes into `out`, checking the digest and size while
    /// streaming; throws on a mismatch or a short transfer. A transfer broken off is resumed
    /// where it stopped (Range), twice at most.
    /// `tee`, when given, sees every byte too, in order (for unpacking while downloading); a
    /// server that answers a resumed request with the whole blob again is then an error.
    void blob(const digest& d, int64_t size, borrowed_fd out, const progress_fn& progress = {},
              const std::function<void(std::string_view)>& tee = {});
    /// A small blob (a config) as a string, checked against `d`.
    std::string blob_text(const digest& d, int64_t size);

    /// The base URL in use ("http://127.0.0.1:5000"), once manifest() found one.
    const std::string& base_url() const { return base_; }

private:
    struct response;
    struct endpoint {
        std::string base;       ///< scheme://host[:port]
        bool verify_tls = true;
        bool mirror = false;
    };
    std::vector<endpoint> endpoints() const;
    /// Probes /v2/ on `e`, authenticating when asked to. Returns why when nothing answers there;
    /// throws when it answers with a refusal.
    std::optional<std::string> probe(const endpoint& e);
    void authenticate(const challenge& c);
    /// A GET on the current endpoint, with auth and redirects handled; 401 once re-authenticates.
    response get(const std::string& path, const std::vector<std::string>& headers, const body_sink& sink);
    response get_once(const std::string& url, const std::vector<std::string>& headers,
                      const body_sink& sink, bool with_auth);
    std::string describe_failure(const response& r, const std::string& what) const;

    reference ref_;
    registry_settings settings_;
    std::string base_;
    bool verify_tls_ = true;
    std::string auth_host_;    ///< scheme://host[:port] the authorization belongs to
    std::string mirror_host_;  ///< host[:port] of the mirror in use, empty for the registry itself
    std::mutex auth_mutex_;
    std::string authorization_;  ///< "Bearer ..." or "Basic ..." once known
    std::optional<challenge> last_challenge_;
    std::mutex pool_mutex_;
    std::vector<void*> pool_;  ///< idle libcurl handles (CURL*), each with its open connections
};

}  // namespace pieces::image
