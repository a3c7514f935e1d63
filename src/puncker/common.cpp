#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "puncker/commands.h"

namespace puncker {

std::string default_root() {
    if (::geteuid() == 0) return "/run/puncker";
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/puncker";
    return "/tmp/puncker-" + std::to_string(::geteuid());
}

void print_json(const nlohmann::json& j, int indent) {
    std::string text = j.dump(indent);
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace puncker
