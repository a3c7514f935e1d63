#include "core/image/registry_files.h"

#include <fcntl.h>
#include <nettle/base64.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/credential_helper.h"
#include "core/image/reference.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

std::string ascii_lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// $HOME, or root's home when it is unset (as under some service managers).
std::string home_dir() {
    const char* home = std::getenv("HOME");
    return home && *home ? home : "/root";
}

std::string home_config(const char* env, const char* file) {
    if (const char* p = std::getenv(env); p && *p) return p;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/pieces/" + file;
    return home_dir() + "/.config/pieces/" + file;
}

// A JSON file that may be missing (then: an empty object); a broken one is an error.
json read_json_file(const std::string& path) {
    if (::access(path.c_str(), F_OK) != 0) return json::object();
    json j = json::parse(read_file(path), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw error(quote(path) + ": invalid JSON");
    return j;
}

std::optional<std::string> unbase64(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    for (char c : text)
        if (std::isspace(static_cast<unsigned char>(c))) return std::nullopt;
    std::string out(BASE64_DECODE_LENGTH(text.size()), '\0');
    base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    size_t len = out.size();
    if (!base64_decode_update(&ctx, &len, reinterpret_cast<uint8_t*>(out.data()), text.size(), text.data()) ||
        !base64_decode_final(&ctx))
        return std::nullopt;
    out.resize(len);
    return out;
}

// Makes the directories above `path` that are missing, private to the user (0700).
void make_parent_dirs(const std::string& path) {
    std::string dir;
    for (const auto& part : split_components(parent_of(path))) {
        dir += "/" + part;
        if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) throw_errno("mkdir", quote(dir));
    }
}

// Writes the auth file anew: a fresh 0600 file beside it, renamed over it. A symlinked auth file
// (to Docker's config.json, say) keeps its link: the file it points to is replaced.
void write_auth_file(const std::string& path, const json& content) {
    std::string target = path;
    if (char resolved[PATH_MAX]; ::realpath(path.c_str(), resolved)) target = resolved;
    make_parent_dirs(target);
    std::string tmp = target + ".new-" + std::to_string(::getpid());
    try {
        write_file(tmp, content.dump(1, '\t') + "\n", O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (::rename(tmp.c_str(), target.c_str()) < 0) throw_errno("rename", quote(tmp));
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

// The auth file's "auths" without the entries naming `registry`; `removed` says whether there were any.
json auths_without(const json& file, const std::string& registry, bool& removed) {
    json auths = file.value("auths", json::object());
    if (!auths.is_object()) throw error(quote(auth_file_path()) + ": \"auths\" must be an object");
    removed = false;
    json kept = json::object();
    for (const auto& [key, value] : auths.items()) {
        if (registry_of_key(key) == ascii_lower(registry)) removed = true;
        else kept[key] = value;
    }
    return kept;
}

// "user:password" from an "auths" entry naming `registry`: base64 "auth", or "username" and "password".
std::optional<std::string> inline_credentials(const json& file, const std::string& path, const std::string& registry) {
    json auths = file.value("auths", json::object());
    if (!auths.is_object()) return std::nullopt;
    for (const auto& [key, value] : auths.items()) {
        if (registry_of_key(key) != ascii_lower(registry) || !value.is_object()) continue;
        // What `docker login` keeps when the token server gave it a refresh token; it takes
        // the place of the user and password beside it.
        if (auto t = value.find("identitytoken"); t != value.end() && t->is_string() && !t->get<std::string>().empty())
            return std::string(identity_token_user) + ":" + t->get<std::string>();
        if (value.contains("auth") && value["auth"].is_string()) {
            auto text = unbase64(value["auth"].get<std::string>());
            if (!text || text->find(':') == std::string::npos)
                throw error(quote(path) + ": the \"auth\" of " + quote(key) + " is not base64 of user:password");
            return text;
        }
        if (value.contains("username") && value.contains("password"))
            return value.value("username", std::string()) + ":" + value.value("password", std::string());
    }
    return std::nullopt;
}

// Runs `fn` (a call of `helper`) with the helper, and the file member that chose it, in front
// of its errors: "docker-credential-pass (credsStore in /root/.docker/config.json): ...".
template <typename Fn>
decltype(auto) with_helper(const helper_choice& helper, const std::string& path, Fn&& fn) {
    return with_context("docker-credential-" + helper.name + " (" + helper.member + " in " + path + ")", fn);
}

}  // namespace

std::string base64(std::string_view in) {
    std::string out(BASE64_ENCODE_RAW_LENGTH(in.size()), '\0');
    base64_encode_raw(out.data(), in.size(), reinterpret_cast<const uint8_t*>(in.data()));
    return out;
}

std::string registry_of_key(std::string key) {
    if (size_t s = key.find("://"); s != std::string::npos) key = key.substr(s + 3);
    key = ascii_lower(key.substr(0, key.find('/')));
    if (key == "index.docker.io" || key == "registry-1.docker.io") key = docker_hub;
    return key;
}

std::string auth_key_for(const std::string& registry) {
    std::string r = registry_of_key(registry);
    return r == docker_hub ? "https://index.docker.io/v1/" : r;
}

registry_settings settings_for(const std::string& registry) {
    std::string path = home_config("PIECES_REGISTRIES_CONFIG", "registries.json");
    registry_settings s;
    reference probe;
    probe.registry = registry;
    s.insecure = probe.is_loopback();
    json all = with_context("registry settings", [&] { return read_json_file(path); });
    json regs = all.value("registries", json::object());
    if (!regs.is_object()) throw error(quote(path) + ": \"registries\" must be an object");
    for (const auto& [key, value] : regs.items()) {
        if (registry_of_key(key) != ascii_lower(registry) || !value.is_object()) continue;
        s.insecure = value.value("insecure", s.insecure);
        s.ca_file = value.value("ca_file", std::string());
        for (const auto& m : value.value("mirrors", json::array()))
            if (m.is_string()) {
                std::string url = m.get<std::string>();
                while (!url.empty() && url.back() == '/') url.pop_back();
                if (url.find("://") == std::string::npos) url = "https://" + url;
                s.mirrors.push_back(url);
            }
    }
    return s;
}

std::string auth_file_path() { return home_config("PIECES_AUTH_FILE", "auth.json"); }

std::vector<std::string> credential_files() {
    if (const char* p = std::getenv("PIECES_AUTH_FILE"); p && *p) return {p};
    std::string docker;
    if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) {
        docker = std::string(d) + "/config.json";
    } else {
        docker = home_dir() + "/.docker/config.json";
    }
    return {auth_file_path(), docker};
}

std::optional<helper_choice> helper_for(const json& file, const std::string& registry) {
    if (auto h = file.find("credHelpers"); h != file.end() && h->is_object())
        for (const auto& [key, value] : h->items())
            if (registry_of_key(key) == ascii_lower(registry) && value.is_string() && !value.get<std::string>().empty())
                return helper_choice{value.get<std::string>(), "credHelpers"};
    if (auto s = file.find("credsStore"); s != file.end() && s->is_string() && !s->get<std::string>().empty())
        return helper_choice{s->get<std::string>(), "credsStore"};
    return std::nullopt;
}

std::optional<std::string> credentials_for(const std::string& registry) {
    return with_context("credentials for " + registry, [&]() -> std::optional<std::string> {
        for (const auto& path : credential_files()) {
            json file = read_json_file(path);
            if (auto helper = helper_for(file, registry)) {
                auto creds = with_helper(*helper, path, [&] { return helper_get(helper->name, auth_key_for(registry)); });
                if (creds) return creds;
                continue;
            }
            if (auto creds = inline_credentials(file, path, registry)) return creds;
        }
        return std::nullopt;
    });
}

std::optional<std::string> identity_token(std::string_view credentials) {
    size_t colon = credentials.find(':');
    if (colon == std::string_view::npos || credentials.substr(0, colon) != identity_token_user) return std::nullopt;
    return std::string(credentials.substr(colon + 1));
}

std::string save_credentials(const std::string& registry, const std::string& user_password) {
    std::string path = auth_file_path();
    std::string kept_in = path;
    with_context("credentials", [&] {
        json file = read_json_file(path);
        bool replaced = false;
        json auths = auths_without(file, registry, replaced);
        std::string key = auth_key_for(registry);
        if (auto helper = helper_for(file, registry)) {
            size_t colon = user_password.find(':');
            with_helper(*helper, path, [&] {
                helper_store(helper->name, key, user_password.substr(0, colon), user_password.substr(colon + 1));
            });
            auths[key] = json::object();  // Docker's marker: the secret is with the helper
            kept_in = "docker-credential-" + helper->name;
        } else {
            auths[key] = {{"auth", base64(user_password)}};
        }
        file["auths"] = auths;
        write_auth_file(path, file);
    });
    return kept_in;
}

bool remove_credentials(const std::string& registry) {
    std::string path = auth_file_path();
    return with_context("credentials", [&] {
        json file = read_json_file(path);
        bool removed = false;
        json auths = auths_without(file, registry, removed);
        if (!removed) return false;
        // As with Docker, the helper is asked only for a registry the file has an entry (a marker) for.
        if (auto helper = helper_for(file, registry))
            with_helper(*helper, path, [&] { return helper_erase(helper->name, auth_key_for(registry)); });
        file["auths"] = auths;
        write_auth_file(path, file);
        return true;
    });
}

}  // namespace pieces::image
