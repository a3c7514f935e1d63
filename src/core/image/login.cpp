#include "core/image/login.h"

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/reference.h"
#include "core/image/registry.h"

namespace pieces::image {

std::string login_registry(const std::string& text) {
    if (text.empty()) return docker_hub;
    std::string host = registry_of_key(text);
    // A host as image references write it: "name/x" must name a registry called `host`.
    bool valid = false;
    try {
        valid = !host.empty() && reference::parse(host + "/x").registry == host;
    } catch (const error&) {
    }
    if (!valid) throw error(quote(text) + " is not a registry (expected HOST[:PORT], e.g. registry.example.com or localhost:5000)");
    return host;
}

std::string login(const std::string& registry, const std::string& user, const std::string& password) {
    return with_context("login " + registry, [&] {
        if (user.empty()) throw error("no user name");
        if (user.find(':') != std::string::npos) throw error("a user name cannot contain ':'");
        if (password.empty()) throw error("no password");
        reference where;
        where.registry = registry;
        registry_client client(where, access::login);
        client.use_credentials(user + ":" + password);
        client.connect();
        return save_credentials(registry, user + ":" + password);
    });
}

void logout(const std::string& registry) {
    if (!remove_credentials(registry)) throw error("logout " + registry + ": not logged in (nothing stored for it in " + quote(auth_file_path()) + ")");
}

}  // namespace pieces::image
