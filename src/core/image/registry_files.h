// The registry client's two files: per-registry settings (registries.json) and credentials (an
// auth file in the format of Docker's config.json), read for pulls and pushes, and the auth file
// written by `pieces login` and `pieces logout`. Both are described in docs/registry.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pieces::image {

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

/// The auth file: $PIECES_AUTH_FILE, else ~/.config/pieces/auth.json
/// ({"auths": {"HOST": {"auth": base64("user:password")}}}).
std::string auth_file_path();

/// The files credentials are read from, in order: $PIECES_AUTH_FILE alone when it is set; else
/// pieces' own auth.json (auth_file_path()) and then Docker's config.json
/// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
std::vector<std::string> credential_files();

/// A credential helper an auth file names for a registry, and which member named it
/// ("credHelpers" or "credsStore").
struct helper_choice {
    std::string name;    ///< "pass" for docker-credential-pass
    std::string member;  ///< "credHelpers" or "credsStore"
    bool operator==(const helper_choice&) const = default;
};

/// The helper the parsed auth file `file` names for `registry`, with Docker's precedence: its
/// `credHelpers` entry (under any spelling of the registry), else `credsStore`; none when
/// neither names one (an empty name is none).
std::optional<helper_choice> helper_for(const nlohmann::json& file, const std::string& registry);

/// "user:password" for `registry`, from the first of credential_files() that has some: through
/// the file's helper when it names one (helper_for), else from its "auths". A helper without
/// credentials for the registry passes on to the next file; one that fails is an error naming
/// it and the file. An identity token (an "auths" entry's "identitytoken", or a helper's answer
/// for the user "<token>") comes as "<token>:TOKEN": see identity_token().
std::optional<std::string> credentials_for(const std::string& registry);

/// The user name under which Docker's files and helpers keep an identity token: an OAuth2
/// refresh token a token server exchanges for access tokens, never sent as a password.
inline constexpr std::string_view identity_token_user = "<token>";

/// The identity token that `credentials` ("user:secret") carry, when the user is
/// identity_token_user.
std::optional<std::string> identity_token(std::string_view credentials);

/// The registry a key of either file names, lower-case: "https://index.docker.io/v1/" and
/// "registry-1.docker.io" are "docker.io", "http://host:5000/" is "host:5000".
std::string registry_of_key(std::string key);

/// The key `pieces login` writes for `registry`: "https://index.docker.io/v1/" for docker.io,
/// as Docker writes it, else the host[:port] itself.
std::string auth_key_for(const std::string& registry);

/// Stores `user_password` ("user:password") for `registry` in the auth file, replacing every
/// entry that names the same registry and keeping all else in the file. Written to a new file
/// of mode 0600 that is renamed over the old one (the target of a symlink is replaced). When
/// the file names a helper for the registry, the secret goes to the helper and the file gets
/// an empty {} entry for it, as Docker writes. Returns where the secret went: the helper
/// ("docker-credential-pass") or the file's path.
std::string save_credentials(const std::string& registry, const std::string& user_password);

/// Removes every entry naming `registry` from the auth file, and then erases the registry's
/// credentials from the helper the file names for it (one that has none is no error); false,
/// and the helper not asked, when the file has no entry for the registry.
bool remove_credentials(const std::string& registry);

/// Standard base64 (with padding), as Basic authentication and the auth file use it.
std::string base64(std::string_view in);

}  // namespace pieces::image
