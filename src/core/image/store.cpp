#include "core/image/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::image {
namespace {

namespace fs = std::filesystem;

void make_dirs(const std::string& path) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) throw error("create " + quote(path) + ": " + ec.message(), ec.value());
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw error(what + ": invalid JSON");
    return j;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
}

}  // namespace

void validate_name(std::string_view name) {
    // name[:tag], where the name may start with host[:port]/.
    std::string_view repo = name, tag;
    size_t slash = name.rfind('/');
    size_t colon = name.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
        repo = name.substr(0, colon);
        tag = name.substr(colon + 1);
    }
    auto fail = [&](const char* why) { throw error("image name " + quote(std::string(name)) + ": " + why); };
    if (repo.empty()) fail("empty");
    size_t first_slash = repo.find('/');
    std::string_view host = first_slash == std::string_view::npos ? std::string_view() : repo.substr(0, first_slash);
    std::string_view path = first_slash == std::string_view::npos ? repo : repo.substr(first_slash + 1);
    bool host_has_port = host.find(':') != std::string_view::npos;
    for (char c : host_has_port ? host.substr(0, host.find(':')) : host)
        if (!is_name_char(c) || c == '/') fail("bad character in the registry host");
    for (char c : path)
        if (!is_name_char(c)) fail("use lower-case letters, digits and . _ - /");
    if (path.empty() || path.front() == '/' || path.back() == '/' || path.find("//") != std::string_view::npos)
        fail("empty path component");
    if (tag.size() > 128) fail("tag longer than 128 characters");
    for (char c : tag)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            fail("tag: use letters, digits and . _ -");
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash) && tag.empty()) fail("empty tag");
}

std::string normalize_name(std::string_view name) {
    validate_name(name);
    size_t slash = name.rfind('/');
    size_t colon = name.rfind(':');
    bool tagged = colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash);
    return tagged ? std::string(name) : std::string(name) + ":latest";
}

std::string default_store_root() {
    if (const char* env = std::getenv("PIECES_ROOT"); env && *env) return env;
    if (::geteuid() == 0) return "/var/lib/pieces";
    const char* data = std::getenv("XDG_DATA_HOME");
    if (data && *data) return std::string(data) + "/pieces";
    const char* home = std::getenv("HOME");
    if (!home || !*home) throw error("no HOME: give the store with --root or PIECES_ROOT");
    return std::string(home) + "/.local/share/pieces";
}

store store::open(const std::string& root, bool exclusive) {
    return with_context("image store " + quote(root), [&] {
        make_dirs(root);
        unique_fd lock(::open((root + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!lock) throw_errno("open", "lock");
        while (::flock(lock.get(), exclusive ? LOCK_EX : LOCK_SH) < 0)
            if (errno != EINTR) throw_errno("lock");
        for (const char* d : {"/blobs/sha256", "/layers", "/tmp", "/cache"}) make_dirs(root + d);
        if (::access((root + "/oci-layout").c_str(), F_OK) != 0)
            write_file_atomic(root + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644);
        if (::access((root + "/index.json").c_str(), F_OK) != 0)
            write_file_atomic(root + "/index.json", R"({"schemaVersion":2,"manifests":[]})", 0644);
        return store(root, std::move(lock));
    });
}

void store::lock_exclusive() {
    while (::flock(lock_.get(), LOCK_EX) < 0)
        if (errno != EINTR) throw_errno("lock", quote(root_ + "/lock"));
}

bool store::has_blob(const digest& d) const { return ::access(blob_path(d).c_str(), F_OK) == 0; }

std::string store::read_blob(const digest& d) const {
    if (!has_blob(d)) throw error("blob " + d.str() + " is not in the store");
    return read_file(blob_path(d));
}

digest store::put_blob(std::string_view data) {
    digest d = sha256_of(data);
    if (has_blob(d)) return d;
    std::string tmp = temp_path("blob");
    write_file(tmp, data, O_CREAT | O_EXCL, 0644);
    adopt_blob(tmp, d);
    return d;
}

std::string store::temp_path(std::string_view purpose) const {
    static unsigned counter = 0;
    return root_ + "/tmp/" + std::string(purpose) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

void store::adopt_blob(const std::string& temp, const digest& d) {
    unique_fd f = open_path(temp, O_RDONLY);
    digest got = sha256_of(f);
    if (got != d) {
        ::unlink(temp.c_str());
        throw error("blob digest mismatch: expected " + d.str() + ", got " + got.str());
    }
    ::fsync(f.get());
    if (::rename(temp.c_str(), blob_path(d).c_str()) < 0) throw_errno("rename", quote(temp));
}

nlohmann::json store::index() const { return parse_json(read_file(root_ + "/index.json"), "index.json"); }

void store::write_index(const nlohmann::json& index) { write_file_atomic(root_ + "/index.json", index.dump(), 0644); }

std::vector<std::pair<std::string, digest>> store::names() const {
    std::vector<std::pair<std::string, digest>> out;
    for (const auto& m : index().value("manifests", nlohmann::json::array())) {
        auto ann = m.value("annotations", nlohmann::json::object());
        if (ann.contains(ref_name_annotation))
            out.emplace_back(ann[ref_name_annotation].get<std::string>(), digest::parse(m.at("digest").get<std::string>()));
    }
    return out;
}

std::optional<digest> store::resolve(std::string_view name_or_id) const {
    std::string text(name_or_id);
    if (text.rfind("sha256:", 0) == 0) text = text.substr(7);
    bool hexish = text.size() >= 6 && text.size() <= 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
    std::optional<digest> by_id;
    auto all = names();
    if (!hexish || name_or_id.find(':') == std::string_view::npos) {
        // A name first: "abc123" may be a name too.
        std::string wanted;
        try {
            wanted = normalize_name(name_or_id);
        } catch (const error&) {
        }
        for (const auto& [n, d] : all)
            if (n == wanted) return d;
    }
    if (!hexish) return std::nullopt;
    for (const auto& [n, d] : all) {
        if (d.hex().rfind(text, 0) != 0) continue;
        if (by_id && *by_id != d) throw error("image id " + quote(text) + " is ambiguous");
        by_id = d;
    }
    if (!by_id && text.size() == 64 && has_blob(digest::parse("sha256:" + text))) by_id = digest::parse("sha256:" + text);
    return by_id;
}

void store::tag(std::string_view name, const digest& manifest, std::string_view media_type, int64_t size) {
    std::string n = normalize_name(name);
    nlohmann::json idx = index();
    auto& list = idx["manifests"];
    nlohmann::json kept = nlohmann::json::array();
    for (auto& m : list)
        if (m.value("annotations", nlohmann::json::object()).value(ref_name_annotation, "") != n) kept.push_back(m);
    kept.push_back({{"mediaType", media_type}, {"digest", manifest.str()}, {"size", size},
                    {"annotations", {{ref_name_annotation, n}}}});
    list = kept;
    write_index(idx);
}

bool store::untag(std::string_view name) {
    std::string n = normalize_name(name);
    nlohmann::json idx = index();
    nlohmann::json kept = nlohmann::json::array();
    bool found = false;
    for (auto& m : idx["manifests"]) {
        if (m.value("annotations", nlohmann::json::object()).value(ref_name_annotation, "") == n) found = true;
        else kept.push_back(m);
    }
    idx["manifests"] = kept;
    if (found) write_index(idx);
    return found;
}

bool store::has_layer(const digest& chain_id) const { return ::access(layer_dir(chain_id).c_str(), F_OK) == 0; }

void store::adopt_layer(const std::string& temp_dir, const digest& chain_id) {
    if (has_layer(chain_id)) {
        remove_all(temp_dir);
        return;
    }
    if (::rename(temp_dir.c_str(), layer_dir(chain_id).c_str()) < 0) throw_errno("rename", quote(temp_dir));
}

std::optional<digest> store::cached(const digest& key) const {
    std::string path = root_ + "/cache/" + key.hex();
    if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
    digest d = digest::parse(read_file(path));
    if (!has_blob(d)) return std::nullopt;
    return d;
}

void store::remember(const digest& key, const digest& manifest) {
    write_file_atomic(root_ + "/cache/" + key.hex(), manifest.str(), 0644);
}

}  // namespace pieces::image
