#include "core/image/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/base/error.h"
#include "core/image/libarchive.h"
#include "core/base/fs.h"
#include "core/image/image.h"
#include "core/image/layer.h"

namespace pieces::image {
namespace {

using nlohmann::json;

constexpr size_t io_chunk = 1 << 20;
constexpr const char* media_index = "application/vnd.oci.image.index.v1+json";
constexpr const char* media_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* containerd_name_annotation = "io.containerd.image.name";
// Text files of an archive (index.json, manifests, configs) are read whole; nothing sane is bigger.
constexpr int64_t max_document = 64 << 20;



bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_hex64(std::string_view s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

int64_t file_size(borrowed_fd fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) throw_errno("stat", what);
    return st.st_size;
}

// A name inside the archive, cleaned: "./a//b/../c" -> "a/c"; ".." never climbs above the top.
// Names are only ever map keys here, never paths on disk.
std::string clean_name(std::string_view name) {
    std::vector<std::string> parts;
    for (auto& c : split_components(name)) {
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
        } else {
            parts.push_back(std::move(c));
        }
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
    return out;
}

// ---- Writing ---------------------------------------------------------------------------------

// A tar stream written front to back: fixed owners, modes and times, so the same images give
// the same bytes.
class tar_writer {
public:
    explicit tar_writer(borrowed_fd out) : a_(archive_write_new()) {
        if (!a_) throw error("libarchive: cannot allocate a writer");
        check(archive_write_set_format_pax_restricted(a_.get()));
        // No padding to a 10 KiB record: the same bytes whether written to a file or a pipe.
        check(archive_write_set_bytes_in_last_block(a_.get(), 1));
        check(archive_write_open_fd(a_.get(), out.get()));
    }

    void add_dir(const std::string& name) { header(name, AE_IFDIR, 0755, 0); }

    void add_bytes(const std::string& name, std::string_view data) {
        header(name, AE_IFREG, 0644, static_cast<int64_t>(data.size()));
        write(data.data(), data.size());
    }

    /// Copies `size` bytes of `in` (from its current offset) as the file `name`.
    void add_file(const std::string& name, borrowed_fd in, int64_t size) {
        header(name, AE_IFREG, 0644, size);
        std::vector<char> buf(io_chunk);
        int64_t left = size;
        while (left > 0) {
            ssize_t n = ::read(in.get(), buf.data(), static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf.size()))));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read", quote(name));
            if (n == 0) throw error(quote(name) + ": shorter than " + std::to_string(size) + " bytes (changed while saving?)");
            write(buf.data(), static_cast<size_t>(n));
            left -= n;
        }
    }

    /// Writes the end-of-archive blocks.
    void close() { check(archive_write_close(a_.get())); }

private:
    void header(const std::string& name, unsigned type, unsigned mode, int64_t size) {
        entry_ptr e(archive_entry_new());
        if (!e) throw error("libarchive: cannot allocate an entry");
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), type);
        archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
        archive_entry_set_size(e.get(), size);
        archive_entry_set_mtime(e.get(), 0, 0);
        archive_entry_set_uid(e.get(), 0);
        archive_entry_set_gid(e.get(), 0);
        check(archive_write_header(a_.get(), e.get()));
    }

    void write(const char* data, size_t size) {
        while (size > 0) {
            la_ssize_t n = archive_write_data(a_.get(), data, size);
            if (n < 0) throw error("write archive: " + archive_message(a_.get()), archive_errno(a_.get()));
            data += n;
            size -= static_cast<size_t>(n);
        }
    }

    void check(int r) {
        if (r < ARCHIVE_WARN) throw error("write archive: " + archive_message(a_.get()), archive_errno(a_.get()));
    }

    write_archive a_;
};

// Writes the decompressed bytes of a layer blob to `out`; returns their sha256 (the DiffID).
digest decompress(borrowed_fd in, borrowed_fd out) {
    read_archive a(archive_read_new());
    if (!a) throw error("libarchive: cannot allocate a reader");
    // The formats a layer may use; no filter that would run an external program.
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_filter_xz(a.get());
    archive_read_support_format_raw(a.get());
    archive_entry* e = nullptr;
    if (archive_read_open_fd(a.get(), in.get(), io_chunk) < ARCHIVE_WARN ||
        archive_read_next_header(a.get(), &e) < ARCHIVE_WARN)
        throw error("decompress layer: " + archive_message(a.get()));
    sha256 h;
    std::vector<char> buf(io_chunk);
    for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) throw error("decompress layer: " + archive_message(a.get()));
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
        write_all(out, std::string_view(buf.data(), static_cast<size_t>(n)), "decompressed layer");
    }
    return h.finish();
}

// One blob of the store added to the archive from its file.
void add_blob(tar_writer& w, const store& s, const digest& d, const std::string& name) {
    unique_fd f = open_path(s.blob_path(d), O_RDONLY);
    w.add_file(name, f, file_size(f, s.blob_path(d)));
}

void save_oci(const store& s, const std::vector<saved_image>& images, tar_writer& w) {
    w.add_bytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    w.add_dir("blobs/");
    w.add_dir("blobs/sha256/");
    std::set<digest> written;
    json manifests = json::array();
    std::set<std::pair<digest, std::string>> listed;
    for (const auto& want : images) {
        image img = load(s, want.manifest);
        std::vector<digest> blobs = {img.manifest_digest, img.config_digest};
        for (const auto& l : img.layers) blobs.push_back(l.blob);
        for (const auto& d : blobs)
            if (written.insert(d).second) add_blob(w, s, d, "blobs/sha256/" + d.hex());
        if (!listed.insert({want.manifest, want.name.value_or("")}).second) continue;
        json desc = {{"mediaType", img.manifest.value("mediaType", std::string(media_manifest))},
                     {"digest", want.manifest.str()},
                     {"size", s.read_blob(want.manifest).size()}};
        if (want.name) desc["annotations"] = {{ref_name_annotation, *want.name}};
        manifests.push_back(desc);
    }
    w.add_bytes("index.json", json{{"schemaVersion", 2}, {"mediaType", media_index}, {"manifests", manifests}}.dump());
}

void save_docker(const store& s, const std::vector<saved_image>& images, tar_writer& w) {
    // One manifest.json entry per image, carrying all the names it was saved under.
    std::vector<digest> order;
    std::map<digest, std::vector<std::string>> tags;
    for (const auto& want : images) {
        if (!tags.contains(want.manifest)) order.push_back(want.manifest);
        auto& t = tags[want.manifest];
        if (want.name && std::find(t.begin(), t.end(), *want.name) == t.end()) t.push_back(*want.name);
    }
    std::set<std::string> written;
    json manifest = json::array();
    json repositories = json::object();
    for (const auto& m : order) {
        image img = load(s, m);
        json layer_names = json::array();
        for (const auto& l : img.layers) {
            // Layer directories are named by DiffID: the same tar is written once.
            std::string dir = l.diff_id.hex();
            std::string name = dir + "/layer.tar";
            layer_names.push_back(name);
            if (!written.insert(name).second) continue;
            w.add_dir(dir + "/");
            w.add_bytes(dir + "/VERSION", "1.0");
            w.add_bytes(dir + "/json", json{{"id", dir}}.dump());
            unique_fd blob = open_path(s.blob_path(l.blob), O_RDONLY);
            if (l.media_type == media_layer_tar || l.blob == l.diff_id) {
                w.add_file(name, blob, file_size(blob, s.blob_path(l.blob)));
                continue;
            }
            // docker load wants the tar itself: decompress into an unnamed file first, for its size.
            unique_fd tmp(::open((s.root() + "/tmp").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
            if (!tmp) throw_errno("open", "a temporary file in " + quote(s.root() + "/tmp"));
            digest got = decompress(blob, tmp);
            if (got != l.diff_id)
                throw error("layer " + l.blob.str() + ": digest mismatch: decompressed to " + got.str() + ", the config says " +
                            l.diff_id.str());
            if (::lseek(tmp.get(), 0, SEEK_SET) < 0) throw_errno("lseek", "decompressed layer");
            w.add_file(name, tmp, file_size(tmp, "decompressed layer"));
        }
        std::string config_name = img.config_digest.hex() + ".json";
        if (written.insert(config_name).second) w.add_bytes(config_name, s.read_blob(img.config_digest));
        manifest.push_back({{"Config", config_name}, {"RepoTags", tags[m]}, {"Layers", layer_names}});
        for (const auto& t : tags[m]) {
            size_t colon = t.rfind(':');
            if (!img.layers.empty()) repositories[t.substr(0, colon)][t.substr(colon + 1)] = img.layers.back().diff_id.hex();
        }
    }
    w.add_bytes("manifest.json", manifest.dump());
    w.add_bytes("repositories", repositories.dump());
}

// ---- Loading ---------------------------------------------------------------------------------

// A regular file of the archive, copied to the staging directory.
struct staged_file {
    std::string path;  ///< where its bytes are now
    digest sha;        ///< sha256 of its bytes
    int64_t size = 0;
};

// Everything the archive held: files by cleaned name, and links (symbolic or hard) to them.
class archive_contents {
public:
    explicit archive_contents(std::string dir) : dir_(std::move(dir)) {}

    /// Copies every entry of the tar read from `in`, checking blobs/sha256/ entries as they pass.
    void read(borrowed_fd in) {
        read_archive a(archive_read_new());
        if (!a) throw error("libarchive: cannot allocate a reader");
        archive_read_support_filter_gzip(a.get());
        archive_read_support_filter_zstd(a.get());
        archive_read_support_filter_xz(a.get());
        archive_read_support_format_tar(a.get());
        auto fail = [&a] {
            // libarchive reports a format it does not recognise with EILSEQ (its "file format" errno on Linux).
            if (archive_errno(a.get()) == EILSEQ) throw error("not a tar archive (" + archive_message(a.get()) + ")");
            throw error("read archive: " + archive_message(a.get()), archive_errno(a.get()));
        };
        if (archive_read_open_fd(a.get(), in.get(), io_chunk) < ARCHIVE_WARN) fail();
        for (;;) {
            archive_entry* e = nullptr;
            int r = archive_read_next_header(a.get(), &e);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) fail();
            const char* path = archive_entry_pathname(e);  // the locale form; where that fails, UTF-8
            if (!path) path = archive_entry_pathname_utf8(e);
            std::string name = clean_name(path ? path : "");
            if (const char* hard = archive_entry_hardlink(e)) {
                links_[name] = clean_name(hard);
                continue;
            }
            mode_t type = archive_entry_filetype(e);
            if (type == AE_IFLNK) {
                const char* target = archive_entry_symlink(e);
                std::string t = target ? target : "";
                links_[name] = clean_name(starts_with(t, "/") ? t : parent_of(name) + "/" + t);
            } else if (type == AE_IFREG) {
                files_[name] = stage(a.get(), name);
            }
        }
    }

    /// The file `name` (links followed), or null.
    const staged_file* find(const std::string& name) const {
        std::string n = clean_name(name);
        for (int hops = 0; hops < 16; ++hops) {
            if (auto f = files_.find(n); f != files_.end()) return &f->second;
            auto l = links_.find(n);
            if (l == links_.end()) return nullptr;
            n = l->second;
        }
        return nullptr;
    }

    /// The file `name`; throws naming `what` when the archive has none.
    const staged_file& need(const std::string& name, const std::string& what) const {
        const staged_file* f = find(name);
        if (!f) throw error("missing " + what + " (" + quote(name) + " is not in the archive)");
        return *f;
    }

    /// A JSON document of the archive.
    json document(const std::string& name, const std::string& what) const {
        const staged_file& f = need(name, what);
        if (f.size > max_document) throw error(what + " " + quote(name) + ": larger than " + std::to_string(max_document) + " bytes");
        json j = json::parse(read_file(f.path), nullptr, false);
        if (j.is_discarded()) throw error(what + " " + quote(name) + ": invalid JSON");
        return j;
    }

    /// A new file in the staging directory, for what the load makes itself (converted manifests).
    staged_file add(std::string_view data) {
        staged_file f{dir_ + "/" + std::to_string(++counter_), sha256_of(data), static_cast<int64_t>(data.size())};
        write_file(f.path, data, O_CREAT | O_EXCL, 0644);
        return f;
    }

private:
    staged_file stage(archive* a, const std::string& name) {
        staged_file f;
        f.path = dir_ + "/" + std::to_string(++counter_);
        unique_fd out = open_path(f.path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        sha256 h;
        std::vector<char> buf(io_chunk);
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
            if (n < 0) throw error("read archive: " + quote(name) + ": " + archive_message(a));
            if (n == 0) break;
            h.update(buf.data(), static_cast<size_t>(n));
            write_all(out, std::string_view(buf.data(), static_cast<size_t>(n)), f.path);
            f.size += n;
        }
        f.sha = h.finish();
        // A blob is named by its digest: check it now, before anything else trusts it.
        std::string_view rest = name;
        if (starts_with(rest, "blobs/sha256/") && is_hex64(rest.substr(13)) && f.sha.hex() != rest.substr(13))
            throw error("blob sha256:" + std::string(rest.substr(13)) + ": digest mismatch (its bytes hash to " + f.sha.str() + ")");
        return f;
    }

    std::string dir_;
    unsigned counter_ = 0;
    std::map<std::string, staged_file> files_;
    std::map<std::string, std::string> links_;
};

// An image the archive brings, ready to go in: its manifest and the blobs it needs.
struct pending_image {
    digest manifest;
    std::string media_type;
    int64_t size = 0;
    std::vector<std::string> names;
};

// What a load will add: the images, and every blob they need with where its bytes are staged.
struct load_plan {
    std::vector<pending_image> images;
    std::map<digest, std::string> blobs;
};

std::optional<std::string> name_from(const json& annotations) {
    for (const char* key : {containerd_name_annotation, ref_name_annotation})
        if (annotations.contains(key) && annotations[key].is_string()) return familiar_name(annotations[key].get<std::string>());
    return std::nullopt;
}

// The OCI layout's blob `d`, checked against the descriptor's size.
const staged_file& oci_blob(const archive_contents& c, const digest& d, int64_t size, load_plan& plan) {
    const staged_file* f = c.find("blobs/sha256/" + d.hex());
    if (!f) throw error("missing blob " + d.str());
    if (size >= 0 && f->size != size)
        throw error("blob " + d.str() + ": size mismatch: " + std::to_string(f->size) + " bytes, the descriptor says " + std::to_string(size));
    plan.blobs.emplace(d, f->path);
    return *f;
}

json oci_document(const archive_contents& c, const digest& d, int64_t size, load_plan& plan) {
    const staged_file& f = oci_blob(c, d, size, plan);
    if (f.size > max_document) throw error("blob " + d.str() + ": too large for a manifest");
    json j = json::parse(read_file(f.path), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw error("blob " + d.str() + ": invalid JSON");
    return j;
}

// From a descriptor of index.json to the image manifest it stands for (an index: the one for
// this machine); records the blobs the image needs.
pending_image plan_oci_image(const archive_contents& c, json desc, load_plan& plan) {
    for (int depth = 0;; ++depth) {
        if (depth > 4) throw error("image indexes nested too deeply");
        digest d = digest::parse(desc.value("digest", ""));
        int64_t size = desc.value("size", int64_t{-1});
        std::string media = desc.value("mediaType", std::string());
        load_plan scratch;  // an index's own blob is not kept
        json doc = oci_document(c, d, size, (media == media_index || media == media_docker_list) ? scratch : plan);
        if (doc.contains("manifests")) {
            json chosen;
            const json& list = doc["manifests"];
            for (const auto& m : list) {
                json p = m.value("platform", json::object());
                if (p.value("os", "") == "linux" && p.value("architecture", "") == oci_architecture()) {
                    chosen = m;
                    break;
                }
            }
            if (chosen.is_null() && list.size() == 1) chosen = list[0];
            if (chosen.is_null()) throw error("index " + d.str() + " has no manifest for linux/" + oci_architecture());
            desc = chosen;
            continue;
        }
        if (!doc.contains("config")) throw error("blob " + d.str() + ": neither an image manifest nor an index");
        const json& config = doc["config"];
        oci_blob(c, digest::parse(config.value("digest", "")), config.value("size", int64_t{-1}), plan);
        for (const auto& l : doc.value("layers", json::array()))
            oci_blob(c, digest::parse(l.value("digest", "")), l.value("size", int64_t{-1}), plan);
        if (media.empty()) media = doc.value("mediaType", std::string(media_manifest));
        return {d, media, size >= 0 ? size : c.find("blobs/sha256/" + d.hex())->size, {}};
    }
}

load_plan plan_oci(const archive_contents& c) {
    load_plan plan;
    json index = c.document("index.json", "index.json");
    if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
        throw error("index.json: no manifests list");
    for (const auto& desc : index["manifests"]) {
        pending_image img = with_context("index.json entry " + desc.value("digest", std::string("?")),
                                         [&] { return plan_oci_image(c, desc, plan); });
        if (auto n = name_from(desc.value("annotations", json::object()))) img.names.push_back(*n);
        plan.images.push_back(std::move(img));
    }
    return plan;
}

// "aa...ff.json" or "blobs/sha256/aa...ff" -> the hex it claims, or empty.
std::string claimed_hex(const std::string& name) {
    std::string base = base_of(name);
    if (base.size() == 69 && base.substr(64) == ".json") base.resize(64);
    return is_hex64(base) ? base : std::string();
}

// Reads the first bytes of a staged layer: is it compressed, and how?
std::string layer_media_type(const staged_file& f) {
    unsigned char head[6] = {};
    unique_fd fd = open_path(f.path, O_RDONLY);
    ssize_t n = ::read(fd.get(), head, sizeof head);
    if (n < 0) throw_errno("read", quote(f.path));
    if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return media_layer_gzip;
    if (n >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) return media_layer_zstd;
    if (n >= 6 && std::memcmp(head, "\xfd" "7zXZ", 5) == 0) throw error("xz-compressed layers have no OCI media type");
    return media_layer_tar;
}

// A docker archive's images, converted: the config as it is, the layer tars as layer blobs,
// and a new OCI manifest naming them.
load_plan plan_docker(archive_contents& c) {
    load_plan plan;
    json list = c.document("manifest.json", "manifest.json");
    if (!list.is_array() || list.empty()) throw error("manifest.json: no images listed");
    for (const auto& entry : list) {
        std::string config_name = entry.value("Config", std::string());
        if (config_name.empty()) throw error("manifest.json: an entry without a Config");
        with_context("image " + quote(config_name), [&] {
            const staged_file& config_file = c.need(config_name, "image config");
            std::string hex = claimed_hex(config_name);
            if (!hex.empty() && hex != config_file.sha.hex())
                throw error("config: digest mismatch (named sha256:" + hex + ", its bytes hash to " + config_file.sha.str() + ")");
            json config = c.document(config_name, "image config");
            json diff_ids = config.value("rootfs", json::object()).value("diff_ids", json::array());
            json layer_names = entry.value("Layers", json::array());
            if (diff_ids.size() != layer_names.size())
                throw error("manifest.json lists " + std::to_string(layer_names.size()) + " layers, the config " +
                            std::to_string(diff_ids.size()) + " diff_ids");
            json layers = json::array();
            for (size_t i = 0; i < layer_names.size(); ++i) {
                std::string name = layer_names[i].get<std::string>();
                const staged_file& f = c.need(name, "layer");
                std::string media = layer_media_type(f);
                digest diff = f.sha;
                if (media != media_layer_tar) {
                    unique_fd fd = open_path(f.path, O_RDONLY);
                    diff = diff_id_of(fd);
                }
                digest expected = digest::parse(diff_ids[i].get<std::string>());
                if (diff != expected)
                    throw error("layer " + quote(name) + ": digest mismatch (the config says " + expected.str() + ", its tar hashes to " +
                                diff.str() + ")");
                layers.push_back({{"mediaType", media}, {"digest", f.sha.str()}, {"size", f.size}});
                plan.blobs.emplace(f.sha, f.path);
            }
            plan.blobs.emplace(config_file.sha, config_file.path);
            json manifest = {{"schemaVersion", 2},
                             {"mediaType", media_manifest},
                             {"config", {{"mediaType", media_config}, {"digest", config_file.sha.str()}, {"size", config_file.size}}},
                             {"layers", layers}};
            staged_file m = c.add(manifest.dump());
            plan.blobs.emplace(m.sha, m.path);
            pending_image img{m.sha, media_manifest, m.size, {}};
            json tags = entry.value("RepoTags", json::array());
            if (tags.is_array())
                for (const auto& t : tags)
                    if (t.is_string()) img.names.push_back(familiar_name(t.get<std::string>()));
            plan.images.push_back(std::move(img));
        });
    }
    return plan;
}

// Moves the planned blobs in and tags the names; on a failure, takes back what it added.
std::vector<loaded_image> commit_plan(store& s, const load_plan& plan) {
    const std::string index_path = s.root() + "/index.json";
    const std::string index_before = read_file(index_path);
    std::vector<digest> added;
    try {
        for (const auto& [d, path] : plan.blobs) {
            if (s.has_blob(d)) continue;
            s.adopt_blob(path, d);
            added.push_back(d);
        }
        std::vector<loaded_image> out;
        for (const auto& img : plan.images) {
            for (const auto& n : img.names) s.tag(n, img.manifest, img.media_type, img.size);
            out.push_back({img.manifest, img.names});
        }
        return out;
    } catch (...) {
        write_file_atomic(index_path, index_before, 0644);
        for (const auto& d : added) ::unlink(s.blob_path(d).c_str());
        throw;
    }
}

// The staging directory of one load: removed whatever happens.
class staging_dir {
public:
    explicit staging_dir(std::string path) : path_(std::move(path)) {
        if (::mkdir(path_.c_str(), 0700) < 0) throw_errno("mkdir", quote(path_));
    }
    ~staging_dir() {
        try {
            remove_all(path_);
        } catch (...) {  // a destructor must not throw; tmp/ is for leftovers of this kind
        }
    }
    staging_dir(const staging_dir&) = delete;
    staging_dir& operator=(const staging_dir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

archive_format parse_archive_format(std::string_view text) {
    if (text == "oci-archive" || text == "oci") return archive_format::oci;
    if (text == "docker-archive" || text == "docker") return archive_format::docker;
    throw error("archive format " + quote(text) + ": use oci-archive or docker-archive");
}

std::string familiar_name(std::string_view reference) {
    std::string r(reference);
    if (size_t at = r.find('@'); at != std::string::npos) r.resize(at);  // a pinned digest: the store names by tag
    for (std::string_view prefix : {"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"}) {
        if (starts_with(r, prefix)) {
            r = r.substr(prefix.size());
            break;
        }
    }
    return normalize_name(r);
}

void save_archive(const store& s, const std::vector<saved_image>& images, archive_format format, borrowed_fd out) {
    tar_writer w(out);
    if (format == archive_format::oci) save_oci(s, images, w);
    else save_docker(s, images, w);
    w.close();
}

std::vector<loaded_image> load_archive(store& s, borrowed_fd in) {
    staging_dir staging(s.temp_path("load"));
    archive_contents contents(staging.path());
    contents.read(in);
    load_plan plan;
    if (contents.find("index.json") && (contents.find("oci-layout") || !contents.find("manifest.json")))
        plan = plan_oci(contents);
    else if (contents.find("manifest.json"))
        plan = plan_docker(contents);
    else
        throw error("no image manifest in the archive (neither an OCI layout's index.json nor a docker manifest.json)");
    s.lock_exclusive();
    return commit_plan(s, plan);
}

}  // namespace pieces::image
