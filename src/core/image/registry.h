// A client for the OCI distribution API (the Docker registry v2 API): the /v2/ probe, manifests
// and blobs fetched and pushed, bearer-token and Basic authentication, plain http for insecure
// registries, and mirrors for Docker Hub. Settings come from two files (registry_files.h).
#pragma once

#include <chrono>
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
#include "core/image/registry_files.h"

namespace pieces::image {

inline constexpr const char* media_oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* media_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* media_docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* media_docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* media_docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

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

/// Bytes received (or sent) so far / expected, for progress display (called from transfer threads).
using progress_fn = std::function<void(uint64_t done, uint64_t total)>;

/// How long a bearer token is used for: the token server's `expires_in`, at least 60 seconds
/// (the distribution spec's default and minimum, which clients enforce), less a few seconds
/// so that a request never starts with a token about to expire.
std::chrono::seconds token_lifetime(const nlohmann::json& answer);

/// Where a Location header sends a request made to `url`: an absolute URL as it is, an absolute
/// path on `url`'s origin, a relative one beside `url`'s path.
std::string resolve_location(const std::string& url, const std::string& location);

/// `url` with one more query parameter (`param` is "name=escaped-value").
std::string with_query(const std::string& url, const std::string& param);

/// What a registry_client asks access for.
enum class access {
    pull,   ///< repository:NAME:pull; mirrors are used
    push,   ///< repository:NAME:pull,push; the registry itself, never a mirror
    login,  ///< no repository: the /v2/ check of `pieces login`
};

/// One repository on one registry (or one of its mirrors). Blob transfers may run on several
/// threads at once; each call uses its own connection.
class registry_client {
public:
    /// Takes the bytes of a successful (2xx) response as they arrive, with its status (200, 206);
    /// false stops the transfer.
    using body_sink = std::function<bool(std::string_view data, long status)>;

    explicit registry_client(reference ref, access mode = access::pull);
    ~registry_client();
    registry_client(const registry_client&) = delete;
    registry_client& operator=(const registry_client&) = delete;

    /// Uses `user_password` ("user:password") instead of what the auth file has (login checks
    /// credentials before they are stored).
    void use_credentials(std::string user_password) { credentials_ = std::move(user_password); }
    /// Asks for pull access to another repository of the registry as well (a blob mount's source).
    /// Before connect().
    void add_pull_scope(const std::string& repository);
    /// Finds the registry's endpoint (never a mirror) and authenticates there: the /v2/ check.
    /// Throws the registry's refusal, or why it cannot be reached.
    void connect();

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

    /// Whether the repository has the blob `d` (HEAD). After connect().
    bool has_blob(const digest& d);
    /// How push_blob got a blob into the repository.
    enum class pushed { mounted, uploaded };
    /// Puts the blob `d` (the `size` bytes of `in`) into the repository: mounted from
    /// `mount_from` (another repository of the registry) when that is given and the registry
    /// can, else uploaded: streamed in one PATCH, resumed from where the registry says it got
    /// to when the connection breaks, then closed by a PUT naming the digest. After connect().
    pushed push_blob(const digest& d, borrowed_fd in, int64_t size, const std::string& mount_from,
                     const progress_fn& progress = {});
    /// PUTs a manifest under `tag` with its media type as Content-Type; checks the digest the
    /// registry answers with against the bytes. After connect().
    void put_manifest(const std::string& tag, std::string_view body, const std::string& media_type);

    /// The base URL in use ("http://127.0.0.1:5000"), once manifest() or connect() found one.
    const std::string& base_url() const { return base_; }

private:
    struct response;
    struct upload;
    struct endpoint {
        std::string base;       ///< scheme://host[:port]
        bool verify_tls = true;
        bool mirror = false;
    };
    std::vector<endpoint> endpoints() const;
    /// Probes each endpoint in turn and calls `use` on the first that answers; an endpoint whose
    /// `use` throws is passed over for the next. Throws the last answer, else why none answered.
    void on_first_endpoint(const std::function<void()>& use);
    /// How many bytes of the upload at `url` the registry has (its status: 204 with a Range),
    /// nothing when it does not say; `url` follows the Location it answers with.
    std::optional<int64_t> upload_offset(std::string& url);
    /// Probes /v2/ on `e`, authenticating when asked to. Returns why when nothing answers there;
    /// throws when it answers with a refusal.
    std::optional<std::string> probe(const endpoint& e);
    /// Gets the authorization a challenge asks for; `renewal` replaces an expired token.
    void authenticate(const challenge& c, bool renewal = false);
    /// A bearer token past its lifetime is replaced before the next request.
    void renew_expired_token();
    /// A GET on the current endpoint, with auth and redirects handled; 401 once re-authenticates.
    response get(const std::string& path, const std::vector<std::string>& headers, const body_sink& sink);
    /// Any request (GET, HEAD, POST, PUT) to `url`, a path on the current endpoint or a full URL:
    /// authorization added for the registry's origin, a 401 answered by authenticating once,
    /// redirects followed for GET and HEAD.
    response send(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                  const body_sink& sink, const upload* body);
    response send_once(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                       const body_sink& sink, const upload* body, bool with_auth);
    std::string describe_failure(const response& r, const std::string& what) const;

    reference ref_;
    access mode_;
    registry_settings settings_;
    std::vector<std::string> scopes_;  ///< asked of a token server besides what a challenge names
    std::optional<std::string> credentials_;  ///< instead of the auth file's
    std::string base_;
    bool verify_tls_ = true;
    std::string auth_host_;    ///< scheme://host[:port] the authorization belongs to
    std::string mirror_host_;  ///< host[:port] of the mirror in use, empty for the registry itself
    std::mutex auth_mutex_;
    std::string authorization_;  ///< "Bearer ..." or "Basic ..." once known
    std::optional<challenge> last_challenge_;
    std::chrono::steady_clock::time_point token_expires_{};  ///< when a bearer authorization is renewed
    std::mutex pool_mutex_;
    std::vector<void*> pool_;  ///< idle libcurl handles (CURL*), each with its open connections
};

}  // namespace pieces::image
