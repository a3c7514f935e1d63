#include "core/image/reference.h"

#include <cctype>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::image {
namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: lower-case alphanumerics separated by ".", "_", "__" or runs of "-".
bool valid_component(std::string_view c) {
    if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
    for (size_t i = 0; i < c.size(); ++i) {
        char ch = c[i];
        if (lower_alnum(ch)) continue;
        if (ch == '.' || ch == '_') {
            // "." and "_" alone, or "__"; never next to another separator otherwise.
            size_t run = 1;
            while (i + run < c.size() && !lower_alnum(c[i + run])) ++run;
            std::string_view sep = c.substr(i, run);
            if (sep != "." && sep != "_" && sep != "__") return false;
            i += run - 1;
            continue;
        }
        if (ch == '-') {
            size_t run = 1;
            while (i + run < c.size() && c[i + run] == '-') ++run;
            if (i + run < c.size() && !lower_alnum(c[i + run])) return false;
            i += run - 1;
            continue;
        }
        return false;
    }
    return true;
}

bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > 128) return false;
    for (size_t i = 0; i < t.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(t[i]);
        bool word = std::isalnum(c) || c == '_';
        if (!(word || (i > 0 && (c == '.' || c == '-')))) return false;
    }
    return true;
}

bool valid_host(std::string_view h) {
    if (h.empty()) return false;
    if (h.front() == '[') {  // [IPv6]:port
        size_t close = h.find(']');
        if (close == std::string_view::npos) return false;
        std::string_view rest = h.substr(close + 1);
        if (rest.empty()) return true;
        h = rest;
        if (h.front() != ':') return false;
        std::string_view port = h.substr(1);
        return !port.empty() && port.find_first_not_of("0123456789") == std::string_view::npos;
    }
    size_t colon = h.find(':');
    std::string_view name = h.substr(0, colon);
    if (name.empty() || name.front() == '-' || name.back() == '-' || name.front() == '.' || name.back() == '.') return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
    if (colon != std::string_view::npos) {
        std::string_view port = h.substr(colon + 1);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
    }
    return true;
}

// The first component of a name is a registry host when it looks like one: a dot, a port,
// "localhost" or an IPv6 address.
bool looks_like_host(std::string_view first) {
    return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos || first == "localhost" ||
           (!first.empty() && first.front() == '[');
}

}  // namespace

bool reference::names_registry(std::string_view text) {
    size_t slash = text.find('/');
    return slash != std::string_view::npos && looks_like_host(text.substr(0, slash));
}

reference reference::parse(std::string_view text) {
    auto fail = [&](const std::string& why) -> reference {
        throw error("invalid image reference " + quote(std::string(text)) + ": " + why);
    };
    if (text.empty()) return fail("empty");
    if (text.size() > 255 + 7 + 64 + 130) return fail("too long");
    reference r;
    std::string_view rest = text;

    // "@sha256:<hex>" at the end.
    if (size_t at = rest.find('@'); at != std::string_view::npos) {
        std::string_view d = rest.substr(at + 1);
        if (d.substr(0, 7) != "sha256:" || d.size() != 7 + 64 || d.substr(7).find_first_not_of("0123456789abcdef") != std::string_view::npos)
            return fail("digest must be sha256: and 64 lower-case hex digits");
        r.digest = std::string(d);
        rest = rest.substr(0, at);
    }
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
        std::string_view first = rest.substr(0, slash);
        if (looks_like_host(first)) {
            if (!valid_host(first)) return fail("bad registry host " + quote(std::string(first)));
            r.registry = std::string(first);
            // Host names are case-insensitive: one spelling, so the store has one name per image.
            for (char& c : r.registry) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            rest = rest.substr(slash + 1);
        }
    }
    // ":tag" after the last slash.
    size_t last_slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
        std::string_view t = rest.substr(colon + 1);
        if (!valid_tag(t)) return fail("bad tag " + quote(std::string(t)) + " (letters, digits, _ . -; at most 128)");
        r.tag = std::string(t);
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) return fail("no repository name");
    for (char c : rest)
        if (std::isupper(static_cast<unsigned char>(c))) return fail("repository names must be lower-case");
    size_t start = 0;
    while (true) {
        size_t end = rest.find('/', start);
        std::string_view comp = rest.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (!valid_component(comp))
            return fail("bad path component " + quote(std::string(comp)) + " (lower-case letters and digits, separated by . _ __ -)");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    r.repository = std::string(rest);
    if (r.registry.empty() || r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") r.registry = docker_hub;
    if (r.registry == docker_hub && r.repository.find('/') == std::string::npos) r.repository = "library/" + r.repository;
    if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
    if (r.registry.size() + 1 + r.repository.size() > 255) return fail("name longer than 255 characters");
    return r;
}

std::string reference::str() const {
    std::string s = registry + "/" + repository;
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
}

std::string reference::store_name() const {
    if (tag.empty()) return {};
    std::string name = registry + "/" + repository;
    if (registry == docker_hub) {
        name = repository;
        if (name.rfind("library/", 0) == 0) name = name.substr(8);
    }
    return name + ":" + tag;
}

std::string reference::api_host() const { return registry == docker_hub ? "registry-1.docker.io" : registry; }

bool reference::is_loopback() const {
    std::string host = registry;
    if (host.rfind("[::1]", 0) == 0) return true;
    host = host.substr(0, host.find(':'));
    return host == "localhost" || host.rfind("127.", 0) == 0;
}

}  // namespace pieces::image
