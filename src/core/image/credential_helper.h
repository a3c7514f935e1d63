// Docker credential helpers: the programs `docker-credential-NAME` that keep registry secrets
// in a keychain or password store (`credsStore` and `credHelpers` of an auth file). Each is
// run without a shell, with a timeout, its answer read from a pipe. docs/registry.md says when.
#pragma once

#include <optional>
#include <string>

namespace pieces::image {

/// How long a helper may take (a password store may have to start gpg-agent) before it is killed.
inline constexpr int credential_helper_timeout_seconds = 60;

/// "user:secret" from what a helper's `get` printed ({"ServerURL":..,"Username":..,"Secret":..});
/// nothing when both are empty (how docker-credential-pass 0.6 answers for what it lacks).
/// An identity token is the user "<token>" with the token as secret (see identity_token()).
/// Throws on anything else.
std::optional<std::string> parse_helper_credentials(const std::string& output);

/// Whether a helper that exited with `status` and printed `output` said "no such credentials"
/// (status 1 and "credentials not found in native keychain", as every helper words it).
bool helper_says_not_found(int status, const std::string& output);

/// `docker-credential-NAME get` for `server_url` (auth_key_for's key); nothing when the helper
/// has no credentials for it. Errors (not installed, failed, timed out) are thrown with the
/// helper's own message and without its name: callers say which helper and why it was asked.
std::optional<std::string> helper_get(const std::string& name, const std::string& server_url);

/// `docker-credential-NAME store` of `user` and `secret` for `server_url`.
void helper_store(const std::string& name, const std::string& server_url, const std::string& user, const std::string& secret);

/// `docker-credential-NAME erase` for `server_url`; false when the helper had nothing for it.
bool helper_erase(const std::string& name, const std::string& server_url);

}  // namespace pieces::image
