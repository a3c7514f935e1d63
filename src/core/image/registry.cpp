#include "core/image/registry.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/curl_api.h"
#include "core/image/image.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

const char* const media_oci_manifest = "application/vnd.oci.image.manifest.v1+json";
const char* const media_docker_schema1 = "application/vnd.docker.distribution.manifest.v1+json";
const char* const media_docker_schema1_signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

// "scheme://host:port" of a URL (what decides whether credentials may go there).
std::string origin_of(const std::string& url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return lower(url);
    size_t path = url.find_first_of("/?#", scheme_end + 3);
    return lower(url.substr(0, path));
}

std::string url_escape(const std::string& s) {
    std::string out;
    const char* hex = "0123456789ABCDEF";
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// With CURLOPT_NOSIGNAL (threads), libcurl leaves SIGPIPE alone, and TLS writes to a peer that
// went away raise it in the writing thread: blocked for the transfer, and one it raised taken
// back, so a closed connection is an error instead of the end of pieces.
class sigpipe_guard {
public:
    sigpipe_guard() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~sigpipe_guard() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            sigtimedwait(&pipe_, nullptr, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
    sigset_t pipe_{}, old_{};
    bool was_pending_ = false;
};

bool is_manifest_type(const std::string& t) { return t == media_oci_manifest || t == media_docker_manifest; }

}  // namespace

platform platform::parse(const std::string& text) {
    platform p;
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t slash = text.find('/', start);
        parts.push_back(text.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() || (parts.size() == 3 && parts[2].empty()))
        throw error("platform " + quote(text) + ": expected os/architecture[/variant]");
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
    return p;
}

platform platform::host() {
    platform p;
    p.architecture = oci_architecture();
    return p;
}

std::string platform::str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }

bool fetched_manifest::is_index() const { return media_type == media_oci_index || media_type == media_docker_list; }

json choose_platform(const json& index, const platform& want) {
    const json* best = nullptr;
    std::vector<std::string> offered;
    const json entries = index.value("manifests", json::array());
    for (const auto& m : entries) {
        if (!m.is_object()) continue;
        std::string type = m.value("mediaType", std::string());
        json p = m.value("platform", json::object());
        std::string os = p.value("os", std::string()), arch = p.value("architecture", std::string());
        std::string variant = p.value("variant", std::string());
        bool attestation = m.value("annotations", json::object()).value("vnd.docker.reference.type", std::string()) == "attestation-manifest";
        if (!is_manifest_type(type) || os.empty() || arch.empty() || os == "unknown" || arch == "unknown" || attestation) continue;
        offered.push_back(os + "/" + arch + (variant.empty() ? "" : "/" + variant));
        if (os != want.os || arch != want.architecture) continue;
        if (!want.variant.empty() && !variant.empty() && variant != want.variant) continue;
        bool exact = variant == want.variant;
        if (!best || (exact && best->value("platform", json::object()).value("variant", std::string()) != want.variant)) best = &m;
    }
    if (!best) {
        std::string list;
        for (const auto& o : offered) list += (list.empty() ? "" : ", ") + o;
        throw error("no image for " + want.str() + " (the index has " + (list.empty() ? "no usable image" : list) + ")");
    }
    return *best;
}

std::string check_manifest_type(const json& body, const std::string& content_type) {
    std::string served = lower(trim(content_type.substr(0, content_type.find(';'))));
    std::string declared = body.is_object() ? body.value("mediaType", std::string()) : std::string();
    if (!body.is_object()) throw error("manifest: invalid JSON");
    if (served == media_docker_schema1 || served == media_docker_schema1_signed || body.value("schemaVersion", 0) == 1)
        throw error("manifest: Docker schema 1 manifests are not supported");
    auto known = [](const std::string& t) {
        return t == media_oci_manifest || t == media_oci_index || t == media_docker_manifest || t == media_docker_list;
    };
    if (!declared.empty()) {
        if (!known(declared)) throw error("manifest: unsupported media type " + quote(declared));
        if (known(served) && served != declared)
            throw error("manifest: served as " + quote(served) + " but declares " + quote(declared));
        return declared;
    }
    // An OCI manifest or index may leave mediaType out: the Content-Type says what it is, and the
    // body must agree (an index has "manifests", a manifest "config").
    if (!known(served)) throw error("manifest: no mediaType and unsupported Content-Type " + quote(served));
    bool looks_index = body.contains("manifests");
    if (looks_index != (served == media_oci_index || served == media_docker_list))
        throw error("manifest: served as " + quote(served) + " but its content is " + (looks_index ? "an index" : "a manifest"));
    return served;
}

challenge challenge::parse(const std::string& header) {
    challenge c;
    std::string h = trim(header);
    size_t sp = h.find(' ');
    c.scheme = h.substr(0, sp);
    if (sp == std::string::npos) return c;
    size_t i = sp + 1;
    while (i < h.size()) {
        while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
        size_t eq = h.find('=', i);
        if (eq == std::string::npos) break;
        std::string key = lower(trim(h.substr(i, eq - i)));
        i = eq + 1;
        std::string value;
        if (i < h.size() && h[i] == '"') {
            ++i;
            while (i < h.size() && h[i] != '"') {
                if (h[i] == '\\' && i + 1 < h.size()) ++i;
                value += h[i++];
            }
            ++i;
        } else {
            size_t end = h.find(',', i);
            value = trim(h.substr(i, end == std::string::npos ? std::string::npos : end - i));
            i = end == std::string::npos ? h.size() : end;
        }
        c.params[key] = value;
    }
    return c;
}

std::chrono::seconds token_lifetime(const json& answer) {
    int64_t seconds = 60;
    if (answer.is_object() && answer.contains("expires_in") && answer["expires_in"].is_number_integer())
        seconds = std::max<int64_t>(60, answer["expires_in"].get<int64_t>());
    return std::chrono::seconds(seconds - 5);
}

std::string resolve_location(const std::string& url, const std::string& location) {
    if (location.find("://") != std::string::npos) return location;
    size_t scheme_end = url.find("://");
    if (location.rfind("//", 0) == 0) return url.substr(0, scheme_end + 1) + location;
    if (location.rfind('/', 0) == 0) return origin_of(url) + location;
    std::string path = url.substr(0, url.find_first_of("?#"));
    size_t last = path.rfind('/');
    if (last == std::string::npos || last < scheme_end + 3) return path + "/" + location;
    return path.substr(0, last + 1) + location;
}

std::string with_query(const std::string& url, const std::string& param) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// ---- the client ----

struct registry_client::response {
    long status = 0;
    std::map<std::string, std::string> headers;  ///< lower-case names
    std::string body;                            ///< what no sink took (error documents, small bodies)
    CURLcode rc = CURLE_OK;
    std::string curl_error;
    std::string redirect;  ///< absolute Location of a 3xx
    std::string sink_error;
    bool ok() const { return rc == CURLE_OK && status >= 200 && status < 300; }
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

/// A request body: `size` bytes of `data`, or of the file `fd` from its start.
struct registry_client::upload {
    std::string_view data;
    int fd = -1;
    int64_t size = 0;  ///< bytes sent, from `start` of the file
    progress_fn progress;
    int64_t start = 0;  ///< where in `fd` the body begins (a resumed upload)
};

registry_client::registry_client(reference ref, access mode)
    : ref_(std::move(ref)), mode_(mode), settings_(settings_for(ref_.registry)) {
    if (mode_ == access::pull) scopes_.push_back("repository:" + ref_.repository + ":pull");
    if (mode_ == access::push) scopes_.push_back("repository:" + ref_.repository + ":pull,push");
    curl();
}

registry_client::~registry_client() {
    for (void* handle : pool_) curl().easy_cleanup(handle);
}

void registry_client::add_pull_scope(const std::string& repository) {
    std::string scope = "repository:" + repository + ":pull";
    if (std::find(scopes_.begin(), scopes_.end(), scope) == scopes_.end()) scopes_.push_back(scope);
}

std::vector<registry_client::endpoint> registry_client::endpoints() const {
    std::vector<endpoint> out;
    // Mirrors serve pulls; what is pushed, and logins, go to the registry itself.
    if (mode_ == access::pull)
        for (const auto& m : settings_.mirrors) out.push_back({m, true, true});
    std::string host = ref_.api_host();
    if (settings_.insecure) {
        out.push_back({"https://" + host, false, false});
        out.push_back({"http://" + host, true, false});
    } else {
        out.push_back({"https://" + host, true, false});
    }
    return out;
}

namespace {

struct transfer {
    registry_client* client;
    const registry_client::body_sink* sink;
    CURL* curl;
    std::string* body;
    std::map<std::string, std::string>* headers;
    bool sink_refused = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<transfer*>(user);
    std::string_view line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) t->headers->clear();  // a new response (after 100 Continue)
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) (*t->headers)[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<transfer*>(user);
    size_t n = size * count;
    long status = 0;
    curl().easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && *t->sink) {
        if (!(*t->sink)(std::string_view(data, n), status)) {
            t->sink_refused = true;
            return 0;
        }
        return n;
    }
    if (t->body->size() + n > (16u << 20)) return 0;  // no document we read is this large
    t->body->append(data, n);
    return n;
}

// Where libcurl is in sending a request body.
struct body_reader {
    std::string_view data;
    int fd;
    int64_t size;
    const progress_fn* progress;
    int64_t start = 0;   // of the body in fd; progress counts from the file's beginning
    int64_t offset = 0;  // within the body
    int error = 0;
};

size_t on_read(char* buf, size_t size, size_t count, void* user) {
    auto* r = static_cast<body_reader*>(user);
    size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(size * count), r->size - r->offset));
    if (want == 0) return 0;
    size_t got = want;
    if (r->fd >= 0) {
        ssize_t n;
        do n = ::pread(r->fd, buf, want, r->start + r->offset);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            r->error = n < 0 ? errno : EIO;  // a file shorter than it was is no less an error
            return CURL_READFUNC_ABORT;
        }
        got = static_cast<size_t>(n);
    } else {
        std::copy_n(r->data.data() + r->offset, want, buf);
    }
    r->offset += static_cast<int64_t>(got);
    if (*r->progress) (*r->progress)(static_cast<uint64_t>(r->start + r->offset), static_cast<uint64_t>(r->start + r->size));
    return got;
}

// libcurl rewinds a body it must send again (a connection that closed before it was read).
int on_seek(void* user, curl_off_t offset, int origin) {
    auto* r = static_cast<body_reader*>(user);
    if (origin != SEEK_SET || offset < 0 || offset > r->size) return CURL_SEEKFUNC_CANTSEEK;
    r->offset = offset;
    return CURL_SEEKFUNC_OK;
}

}  // namespace

registry_client::response registry_client::send_once(const std::string& method, const std::string& url,
                                                     const std::vector<std::string>& headers, const body_sink& sink,
                                                     const upload* body, bool with_auth) {
    const curl_api& api = curl();
    // A handle from the pool: its connections (and TLS sessions) are reused by later requests.
    CURL* c = nullptr;
    {
        std::lock_guard lock(pool_mutex_);
        if (!pool_.empty()) {
            c = pool_.back();
            pool_.pop_back();
        }
    }
    if (!c) c = api.easy_init();
    if (!c) throw error("libcurl: no handle");
    struct give_back {
        registry_client* self;
        CURL* handle;
        ~give_back() {
            curl().easy_setopt(handle, CURLOPT_HTTPHEADER, nullptr);
            curl().easy_setopt(handle, CURLOPT_ERRORBUFFER, nullptr);
            curl().easy_setopt(handle, CURLOPT_READDATA, nullptr);
            curl().easy_setopt(handle, CURLOPT_SEEKDATA, nullptr);
            std::lock_guard lock(self->pool_mutex_);
            self->pool_.push_back(handle);
        }
    } returned{this, c};
    response r;
    transfer t{this, &sink, c, &r.body, &r.headers};
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = api.slist_append(list, h.c_str());
    if (with_auth) {
        std::lock_guard lock(auth_mutex_);
        if (!authorization_.empty() && origin_of(url) == auth_host_)
            list = api.slist_append(list, ("Authorization: " + authorization_).c_str());
    }
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> owned(list, api.slist_free_all);
    char errbuf[CURL_ERROR_SIZE] = "";
    static const progress_fn no_progress;
    body_reader reader{body ? body->data : std::string_view(), body ? body->fd : -1, body ? body->size : 0,
                       body && body->progress ? &body->progress : &no_progress, body ? body->start : 0};
    api.easy_setopt(c, CURLOPT_URL, url.c_str());
    // The method, set every time: a pooled handle keeps what an earlier request set, and
    // HTTPGET undoes an earlier HEAD, POST or PUT.
    api.easy_setopt(c, CURLOPT_HTTPGET, 1L);
    api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr));
    if (method == "HEAD") {
        api.easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method == "POST" || method == "PUT" || method == "PATCH") {
        if (method == "POST") api.easy_setopt(c, CURLOPT_POST, 1L);
        else api.easy_setopt(c, CURLOPT_UPLOAD, 1L);
        if (method == "PATCH") api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
        api.easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        api.easy_setopt(c, CURLOPT_READDATA, &reader);
        api.easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        api.easy_setopt(c, CURLOPT_SEEKDATA, &reader);
        if (method == "POST") api.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(reader.size));
        else api.easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(reader.size));
    }
    api.easy_setopt(c, CURLOPT_HTTPHEADER, list);
    api.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are followed by send(), which decides about credentials
    api.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    api.easy_setopt(c, CURLOPT_HEADERDATA, &t);
    api.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    api.easy_setopt(c, CURLOPT_WRITEDATA, &t);
    api.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    api.easy_setopt(c, CURLOPT_USERAGENT, "pieces/" PIECES_VERSION);
    api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    // A transfer that stalls (under 1 byte/s for a minute) fails instead of hanging.
    api.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    api.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!settings_.ca_file.empty()) api.easy_setopt(c, CURLOPT_CAINFO, settings_.ca_file.c_str());
    api.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify_tls_ ? 1L : 0L);
    api.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify_tls_ ? 2L : 0L);
    {
        sigpipe_guard no_sigpipe;
        r.rc = api.easy_perform(c);
    }
    api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    if (r.rc != CURLE_OK) r.curl_error = errbuf[0] ? errbuf : api.easy_strerror(r.rc);
    if (reader.error) r.curl_error = "reading what is sent: " + std::string(std::strerror(reader.error));
    if (t.sink_refused) r.sink_error = "refused by the receiver";
    char* location = nullptr;
    if (r.status >= 300 && r.status < 400 && api.easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        r.redirect = location;
    return r;
}

registry_client::response registry_client::get(const std::string& path, const std::vector<std::string>& headers,
                                               const body_sink& sink) {
    return send("GET", path, headers, sink, nullptr);
}

registry_client::response registry_client::send(const std::string& method, const std::string& target,
                                                const std::vector<std::string>& headers, const body_sink& sink,
                                                const upload* body) {
    std::string url = target.find("://") == std::string::npos ? base_ + target : target;
    bool reauthenticated = false;
    bool follows = method == "GET" || method == "HEAD";
    for (int hops = 0; hops < 10; ++hops) {
        // Credentials go to the registry's own origin only, never to where it redirects.
        bool same_origin = origin_of(url) == origin_of(base_);
        if (same_origin) renew_expired_token();
        response r = send_once(method, url, headers, sink, body, same_origin);
        if (r.rc == CURLE_OK && r.status == 401 && same_origin && !reauthenticated) {
            std::string www = r.header("www-authenticate");
            if (www.empty()) return r;
            authenticate(challenge::parse(www));
            reauthenticated = true;
            continue;
        }
        if (follows && r.rc == CURLE_OK && r.status >= 300 && r.status < 400 && !r.redirect.empty()) {
            url = r.redirect;
            continue;
        }
        return r;
    }
    throw error("too many redirects from " + url);
}

void registry_client::renew_expired_token() {
    std::optional<challenge> c;
    {
        std::lock_guard lock(auth_mutex_);
        if (!last_challenge_ || authorization_.rfind("Bearer ", 0) != 0 || std::chrono::steady_clock::now() < token_expires_)
            return;
        c = last_challenge_;
    }
    authenticate(*c, true);
}

void registry_client::authenticate(const challenge& c, bool renewal) {
    // A mirror gets the credentials stored for its own host, never the registry's.
    const std::string& host = mirror_host_.empty() ? ref_.registry : mirror_host_;
    std::optional<std::string> creds = credentials_ && mirror_host_.empty() ? credentials_ : credentials_for(host);
    std::string scheme = lower(c.scheme);
    std::string auth;
    auto expires = std::chrono::steady_clock::time_point::max();
    if (scheme == "basic") {
        if (!creds) throw error("authentication required by " + host + " (no credentials for it in the auth files or their credential helpers)");
        if (identity_token(*creds))
            throw error("authentication: the credentials for " + host + " are an identity token, which only a token server takes, and " + host + " asks for Basic authentication");
        auth = "Basic " + base64(*creds);
    } else if (scheme == "bearer") {
        auto realm = c.params.find("realm");
        if (realm == c.params.end() || realm->second.empty()) throw error("authentication: a Bearer challenge without a realm");
        auto service = c.params.find("service");
        // What this client needs, and what the challenge names besides (space-separated scopes).
        std::vector<std::string> scopes = scopes_;
        if (auto s = c.params.find("scope"); s != c.params.end())
            for (size_t i = 0; i < s->second.size();) {
                size_t end = std::min(s->second.find(' ', i), s->second.size());
                std::string one = s->second.substr(i, end - i);
                if (!one.empty() && std::find(scopes.begin(), scopes.end(), one) == scopes.end()) scopes.push_back(one);
                i = end + 1;
            }
        std::string url = realm->second;
        response r;
        if (auto refresh = creds ? identity_token(*creds) : std::nullopt) {
            // An identity token is an OAuth2 refresh token: the realm exchanges it for an access
            // token in a form POST (RFC 6749 section 6), the scopes space-separated in one field.
            std::string form = "grant_type=refresh_token&client_id=pieces&refresh_token=" + url_escape(*refresh);
            if (service != c.params.end()) form += "&service=" + url_escape(service->second);
            std::string joined;
            for (const auto& scope : scopes) joined += (joined.empty() ? "" : " ") + scope;
            if (!joined.empty()) form += "&scope=" + url_escape(joined);
            upload body{form, -1, static_cast<int64_t>(form.size()), {}};
            r = send_once("POST", url, {"Content-Type: application/x-www-form-urlencoded"}, {}, &body, false);
        } else {
            if (service != c.params.end()) url = with_query(url, "service=" + url_escape(service->second));
            for (const auto& scope : scopes) url = with_query(url, "scope=" + url_escape(scope));
            std::vector<std::string> headers;
            // Credentials go to the token server named by the registry (anonymous without them).
            if (creds) headers.push_back("Authorization: Basic " + base64(*creds));
            r = send_once("GET", url, headers, {}, nullptr, false);
        }
        if (r.rc != CURLE_OK) throw error("token server " + origin_of(url) + ": " + r.curl_error);
        // OAuth2 token endpoints refuse a grant with 400 ("invalid_grant"), the others with 401/403.
        if (r.status == 401 || r.status == 403 || (r.status == 400 && identity_token(creds.value_or(""))))
            throw error("authentication refused by the token server " + origin_of(url) + " (HTTP " + std::to_string(r.status) + ")");
        if (r.status != 200) throw error("token server " + origin_of(url) + ": HTTP " + std::to_string(r.status));
        json j = json::parse(r.body, nullptr, false);
        std::string token = j.is_object() ? j.value("token", j.value("access_token", std::string())) : std::string();
        if (token.empty()) throw error("token server " + origin_of(url) + ": no token in its answer");
        auth = "Bearer " + token;
        expires = std::chrono::steady_clock::now() + token_lifetime(j);
    } else {
        throw error("authentication: unsupported scheme " + quote(c.scheme));
    }
    std::lock_guard lock(auth_mutex_);
    // A second 401 with the same authorization means it was refused.
    if (!renewal && auth == authorization_ && last_challenge_) throw error("authentication refused by " + host);
    authorization_ = auth;
    auth_host_ = origin_of(base_);
    last_challenge_ = c;
    token_expires_ = expires;
}

std::string registry_client::describe_failure(const response& r, const std::string& what) const {
    if (r.rc != CURLE_OK) return (what.empty() ? "" : what + ": ") + r.curl_error;
    std::string detail;
    json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() && j["errors"][0].is_object())
        detail = j["errors"][0].value("message", j["errors"][0].value("code", std::string()));
    if (detail.empty()) {
        switch (r.status) {
        case 401: detail = "authentication refused"; break;
        case 403: detail = "access denied"; break;
        case 404: detail = "not found"; break;
        default: detail = "unexpected answer";
        }
    } else if (r.status == 401) {
        detail = "authentication refused: " + detail;
    }
    for (char& ch : detail)
        if (ch == '\n' || ch == '\r') ch = ' ';
    return (what.empty() ? "" : what + ": ") + detail + " (HTTP " + std::to_string(r.status) + ")";
}

std::optional<std::string> registry_client::probe(const endpoint& e) {
    base_ = e.base;
    verify_tls_ = e.verify_tls;
    mirror_host_ = e.mirror ? registry_of_key(e.base) : std::string();
    response r = get("/v2/", {}, {});
    if (r.rc != CURLE_OK) return "registry " + e.base + " is unreachable: " + r.curl_error;
    if (r.status == 401) throw error(describe_failure(r, "registry " + e.base));
    if (r.status != 200) throw error("registry " + e.base + " answered /v2/ with HTTP " + std::to_string(r.status));
    return std::nullopt;
}

void registry_client::on_first_endpoint(const std::function<void()>& use) {
    std::string answered_error, unreachable_error;
    for (const endpoint& e : endpoints()) {
        try {
            if (auto unreachable = probe(e)) {
                unreachable_error = *unreachable;
                continue;
            }
            use();
            return;
        } catch (const error& err) {
            answered_error = err.what();
        }
    }
    throw error(!answered_error.empty() ? answered_error : unreachable_error);
}

void registry_client::connect() {
    on_first_endpoint([] {});
}

fetched_manifest registry_client::manifest(const std::string& ref) {
    fetched_manifest m;
    on_first_endpoint([&] {
        std::string accept = std::string("Accept: ") + media_oci_index + ", " + media_oci_manifest + ", " + media_docker_list +
                             ", " + media_docker_manifest;
        response r = get("/v2/" + ref_.repository + "/manifests/" + ref, {accept}, {});
        if (!r.ok()) throw error(describe_failure(r, ""));  // the context names the reference already
        m.body = r.body;
        m.dgst = sha256_of(m.body);
        m.json = json::parse(m.body, nullptr, false);
        m.media_type = check_manifest_type(m.json, r.header("content-type"));
        if (ref.rfind("sha256:", 0) == 0 && m.dgst.str() != ref)
            throw error("manifest digest mismatch: asked for " + ref + ", got " + m.dgst.str());
        if (std::string served = r.header("docker-content-digest"); served.rfind("sha256:", 0) == 0 && served != m.dgst.str())
            throw error("manifest digest mismatch: the registry says " + served + ", the bytes give " + m.dgst.str());
    });
    return m;
}

void registry_client::blob(const digest& d, int64_t size, borrowed_fd out, const progress_fn& progress,
                           const std::function<void(std::string_view)>& tee) {
    auto hash = std::make_unique<sha256>();
    uint64_t done = 0;
    uint64_t expected = static_cast<uint64_t>(size);
    std::string write_error;
    bool first_chunk = true;
    auto sink = [&](std::string_view data, long status) {
        if (first_chunk && done > 0 && status != 206) {
            // The server ignored our Range and sends the whole blob again: start over.
            if (tee) {
                write_error = "the registry ignored a Range request while the layer was being unpacked";
                return false;
            }
            if (::ftruncate(out.get(), 0) < 0 || ::lseek(out.get(), 0, SEEK_SET) < 0) {
                write_error = "cannot rewind the download file";
                return false;
            }
            hash = std::make_unique<sha256>();
            done = 0;
        }
        first_chunk = false;
        if (done + data.size() > expected) {
            write_error = "the registry sent more than the " + std::to_string(expected) + " bytes the manifest says";
            return false;
        }
        hash->update(data);
        try {
            write_all(out, data, "blob");
        } catch (const error& e) {
            write_error = e.what();
            return false;
        }
        if (tee) tee(data);
        done += data.size();
        if (progress) progress(done, expected);
        return true;
    };
    std::string what = "blob " + d.str().substr(0, 19);
    for (int attempt = 0;; ++attempt) {
        std::vector<std::string> headers;
        if (done > 0) headers.push_back("Range: bytes=" + std::to_string(done) + "-");
        first_chunk = true;
        response r = get("/v2/" + ref_.repository + "/blobs/" + d.str(), headers, sink);
        if (!write_error.empty()) throw error(what + ": " + write_error);
        if (r.rc == CURLE_OK && !r.ok()) throw error(describe_failure(r, what));
        // A connection broken off mid-blob is resumed; a complete answer that is short is not.
        if (r.rc != CURLE_OK && done < expected && attempt < 2) continue;
        if (r.rc != CURLE_OK || done != expected)
            throw error(what + ": truncated download (" + std::to_string(done) + " of " + std::to_string(expected) + " bytes" +
                        (r.curl_error.empty() ? "" : ": " + r.curl_error) + ")");
        break;
    }
    digest got = hash->finish();
    if (got != d) throw error(what + ": digest mismatch: got " + got.str());
}

std::string registry_client::blob_text(const digest& d, int64_t size) {
    if (size < 0 || size > (16 << 20)) throw error("blob " + d.str() + ": implausible size " + std::to_string(size));
    // Through blob() and a memory file: the same checks and the same resuming.
    unique_fd mem(::memfd_create("pieces-blob", MFD_CLOEXEC));
    if (!mem) throw_errno("memfd_create");
    blob(d, size, mem);
    if (::lseek(mem.get(), 0, SEEK_SET) < 0) throw_errno("lseek", "memfd");
    return read_all(mem);
}

bool registry_client::has_blob(const digest& d) {
    response r = send("HEAD", "/v2/" + ref_.repository + "/blobs/" + d.str(), {}, {}, nullptr);
    if (r.ok()) return true;
    if (r.rc == CURLE_OK && r.status == 404) return false;
    throw error(describe_failure(r, "blob " + d.str().substr(0, 19)));
}

registry_client::pushed registry_client::push_blob(const digest& d, borrowed_fd in, int64_t size,
                                                    const std::string& mount_from, const progress_fn& progress) {
    std::string what = "blob " + d.str().substr(0, 19);
    std::string uploads = "/v2/" + ref_.repository + "/blobs/uploads/";
    // A mount links the blob in (201) or, when the registry cannot, opens an upload instead (202).
    auto start_upload = [&](const std::string& query) {
        upload nothing;
        response started = send("POST", uploads + query, {}, {}, &nothing);
        if (started.rc == CURLE_OK && started.status == 201 && !query.empty()) return std::string();
        if (started.rc != CURLE_OK || started.status != 202) throw error(describe_failure(started, what + ": starting an upload"));
        std::string location = started.header("location");
        if (location.empty()) throw error(what + ": the registry started an upload but gave no Location");
        return resolve_location(base_ + uploads, location);
    };
    std::string url = start_upload(mount_from.empty() ? "" : "?mount=" + url_escape(d.str()) + "&from=" + url_escape(mount_from));
    if (url.empty()) return pushed::mounted;
    // The blob streamed in one PATCH, as Docker sends it and every registry takes. A connection
    // broken off mid-blob (twice at most) is resumed from what the upload's status says arrived,
    // or, where the registry cannot say (its upload URL carries a state that is stale now),
    // sent again in a new upload. What the registry refuses is not tried again.
    int64_t sent = 0;
    for (int attempt = 0; sent < size; ++attempt) {
        std::vector<std::string> headers{"Content-Type: application/octet-stream"};
        if (sent > 0) headers.push_back("Content-Range: " + std::to_string(sent) + "-" + std::to_string(size - 1));
        upload body{{}, in.get(), size - sent, progress, sent};
        response r = send("PATCH", url, headers, {}, &body);
        if (r.rc == CURLE_OK && r.status == 202) {
            if (std::string next = r.header("location"); !next.empty()) url = resolve_location(url, next);
            break;
        }
        if (r.rc == CURLE_OK || r.rc == CURLE_ABORTED_BY_CALLBACK || attempt == 2)
            throw error(describe_failure(r, what + ": upload"));
        if (auto arrived = upload_offset(url); arrived && *arrived <= size) {
            sent = *arrived;
        } else {
            url = start_upload("");
            sent = 0;
        }
    }
    upload none;
    response done = send("PUT", with_query(url, "digest=" + url_escape(d.str())), {}, {}, &none);
    if (done.rc != CURLE_OK || done.status != 201) throw error(describe_failure(done, what + ": upload"));
    return pushed::uploaded;
}

std::optional<int64_t> registry_client::upload_offset(std::string& url) {
    response r = send("GET", url, {}, {}, nullptr);
    if (r.rc != CURLE_OK || r.status != 204) return std::nullopt;
    if (std::string next = r.header("location"); !next.empty()) url = resolve_location(url, next);
    // "Range: 0-N" is N+1 bytes; "0-0" is also how nothing at all is said, and taken as that.
    std::string range = r.header("range");
    if (range.rfind("bytes=", 0) == 0) range.erase(0, 6);
    size_t dash = range.find('-');
    if (dash == std::string::npos || range.substr(0, dash) != "0") return std::nullopt;
    int64_t last = 0;
    auto [end, ec] = std::from_chars(range.data() + dash + 1, range.data() + range.size(), last);
    if (ec != std::errc() || end != range.data() + range.size() || last < 0) return std::nullopt;
    return last == 0 ? 0 : last + 1;
}

void registry_client::put_manifest(const std::string& tag, std::string_view body, const std::string& media_type) {
    upload content{body, -1, static_cast<int64_t>(body.size()), {}};
    response r = send("PUT", "/v2/" + ref_.repository + "/manifests/" + tag, {"Content-Type: " + media_type}, {}, &content);
    if (r.rc != CURLE_OK || r.status != 201) throw error(describe_failure(r, "manifest"));
    std::string ours = sha256_of(body).str();
    if (std::string served = r.header("docker-content-digest"); served.rfind("sha256:", 0) == 0 && served != ours)
        throw error("manifest: the registry stored it as " + served + ", the bytes give " + ours);
}

}  // namespace pieces::image
