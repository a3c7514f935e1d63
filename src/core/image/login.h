// `pieces login` and `pieces logout`: credentials checked against a registry, then kept in the
// auth file that pulls and pushes read (registry_files.h).
#pragma once

#include <string>

namespace pieces::image {

/// The registry a login names: docker.io when `text` is empty; Docker Hub's other names and
/// URLs ("https://index.docker.io/v1/", "registry-1.docker.io") are docker.io; a scheme and a
/// path are dropped ("http://host:5000/" is host:5000). Throws when no registry host remains.
std::string login_registry(const std::string& text);

/// Checks `user` and `password` with the registry's /v2/ (Basic, or through its token server),
/// and only when it accepts them stores them for `registry`, replacing what was stored for it.
/// Returns where they went (the auth file, or the credential helper it names).
std::string login(const std::string& registry, const std::string& user, const std::string& password);

/// Removes what is stored for `registry`; throws when nothing is.
void logout(const std::string& registry);

}  // namespace pieces::image
