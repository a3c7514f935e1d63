#include "core/image/pull.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/image.h"
#include "core/image/layer.h"
#include "core/image/parallel.h"
#include "core/image/rootfs.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

struct download {
    size_t index;  ///< in the manifest's layers
    digest blob;
    int64_t size;
    std::string temp;        ///< the blob file being written
    digest diff_id;          ///< what the config says the layer's tar hashes to
    digest chain;            ///< the key of its unpacked form
    std::string unpack_dir;  ///< unpacked while downloading into this directory; empty: unpacked later
};

// Sends all of `data` to a socket; false once the reader is gone (never SIGPIPE).
bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Downloads one layer blob into job.temp and, when job.unpack_dir is set, unpacks it at the same
// time: the bytes go through a socket to an unpacking thread, which checks the DiffID.
void fetch_layer(registry_client& client, const download& job, const progress_fn& progress) {
    unique_fd out = open_path(job.temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (job.unpack_dir.empty()) {
        client.blob(job.blob, job.size, out, progress);
        return;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) throw_errno("socketpair");
    unique_fd writer(sv[0]), reader(sv[1]);
    if (::mkdir(job.unpack_dir.c_str(), 0755) < 0) throw_errno("mkdir", quote(job.unpack_dir));
    std::exception_ptr unpack_failure;
    layer_digests got{};
    std::thread unpacker([&] {
        try {
            unique_fd dir = open_path(job.unpack_dir, O_RDONLY | O_DIRECTORY);
            got = unpack_layer(reader, dir, {.allow_devices = true});
        } catch (...) {
            unpack_failure = std::current_exception();
        }
        // Whatever happened, read to the end so the download never waits on us.
        char buf[65536];
        while (true) {
            ssize_t n = ::read(reader.get(), buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EINTR)) break;
        }
    });
    bool teeing = true;
    try {
        client.blob(job.blob, job.size, out, progress, [&](std::string_view data) {
            if (teeing) teeing = send_all(writer.get(), data);
        });
    } catch (...) {
        ::shutdown(writer.get(), SHUT_WR);
        unpacker.join();
        throw;
    }
    ::shutdown(writer.get(), SHUT_WR);
    unpacker.join();
    if (unpack_failure) std::rethrow_exception(unpack_failure);
    if (got.diff_id != job.diff_id)
        throw error("layer " + job.blob.str().substr(0, 19) + ": diff_id mismatch: the config says " + job.diff_id.str() +
                    ", the blob gives " + got.diff_id.str());
}

// Undoes what a pull added to the store, unless it completed.
class rollback {
public:
    explicit rollback(store& s) : s_(s) {}
    ~rollback() {
        if (done_) return;
        try {
            undo();
        } catch (const std::exception&) {
            // Best effort: what cannot be removed is left for `pieces prune`.
        }
    }
    void undo() {
        for (const auto& t : temps_) remove_all(t);
        for (const auto& b : blobs_) ::unlink(s_.blob_path(b).c_str());
        for (const auto& l : layers_) remove_all(s_.layer_dir(l));
    }
    rollback(const rollback&) = delete;
    rollback& operator=(const rollback&) = delete;
    void temp(const std::string& path) { temps_.push_back(path); }
    /// Stores `data` as a blob, remembering it when it is new.
    digest put(std::string_view data) {
        digest d = sha256_of(data);
        if (!s_.has_blob(d)) blobs_.push_back(s_.put_blob(data));
        return d;
    }
    void adopted(const digest& d) { blobs_.push_back(d); }
    void layer(const digest& chain) { layers_.push_back(chain); }
    void commit() { done_ = true; }

private:
    store& s_;
    std::vector<std::string> temps_;
    std::vector<digest> blobs_;
    std::vector<digest> layers_;
    bool done_ = false;
};

std::string short_id(const digest& d) { return d.hex().substr(0, 12); }

}  // namespace

json oci_manifest_of(const json& manifest) {
    json out = manifest;
    std::string type = manifest.value("mediaType", std::string(media_manifest));
    if (type != media_manifest && type != media_docker_manifest) throw error("manifest: not an image manifest (" + type + ")");
    out["mediaType"] = media_manifest;
    if (!out.contains("config") || !out["config"].is_object()) throw error("manifest: no config");
    if (out["config"].value("mediaType", std::string()) == media_docker_config) out["config"]["mediaType"] = media_config;
    if (!out.contains("layers")) out["layers"] = json::array();
    for (auto& l : out["layers"]) {
        std::string t = l.value("mediaType", std::string());
        if (t == media_docker_layer_gzip) l["mediaType"] = media_layer_gzip;
        else if (t != media_layer_gzip && t != media_layer_zstd && t != media_layer_tar)
            throw error("manifest: layer type " + quote(t) + " is not supported (foreign or non-distributable layers)");
        if (l.contains("urls")) throw error("manifest: layers fetched from other URLs are not supported");
    }
    return out;
}

pull_result pull(store& s, const std::string& ref_text, const pull_options& opts) {
    reference ref = reference::parse(ref_text);
    return with_context("pull " + ref.str(), [&] {
        auto say = [&](const std::string& line) {
            if (opts.say) opts.say(line);
        };
        platform want = opts.want ? *opts.want : platform::host();
        registry_client client(ref);
        pull_result result;

        // The manifest, through the index when the reference names one.
        fetched_manifest top = client.manifest(ref.manifest_ref());
        result.registry_digest = top.dgst;
        fetched_manifest chosen = std::move(top);
        bool chosen_from_index = chosen.is_index();
        if (chosen_from_index) {
            json entry = choose_platform(chosen.json, want);
            chosen = client.manifest(entry.at("digest").get<std::string>());
            if (chosen.is_index()) throw error("an index inside an index is not supported");
        }
        json manifest = oci_manifest_of(chosen.json);
        const json& config_desc = manifest["config"];
        digest config_digest = digest::parse(config_desc.value("digest", ""));
        int64_t config_size = config_desc.value("size", int64_t{-1});

        rollback undo(s);
        std::string config_text = s.has_blob(config_digest) ? s.read_blob(config_digest) : client.blob_text(config_digest, config_size);
        json config = json::parse(config_text, nullptr, false);
        if (!config.is_object()) throw error("config: invalid JSON");
        // A single-platform image asked for with --platform must be that platform.
        if (opts.want && !chosen_from_index) {
            std::string os = config.value("os", std::string()), arch = config.value("architecture", std::string());
            if (os != want.os || arch != want.architecture)
                throw error("the image is for " + os + "/" + arch + ", not " + want.str());
        }
        json diff_ids = config.value("rootfs", json::object()).value("diff_ids", json::array());
        if (diff_ids.size() != manifest["layers"].size())
            throw error("the manifest lists " + std::to_string(manifest["layers"].size()) + " layers, the config " +
                        std::to_string(diff_ids.size()) + " diff_ids");
        std::vector<digest> layer_diff_ids, chains;
        for (const auto& id : diff_ids) {
            layer_diff_ids.push_back(digest::parse(id.is_string() ? id.get<std::string>() : ""));
            chains.push_back(chain_id(layer_diff_ids));
        }
        // The unpacked layers this pull adds (to remove them again if it fails).
        for (const auto& c : chains)
            if (!s.has_layer(c)) undo.layer(c);

        // Layers not yet in the store, downloaded a few at a time into temporary files.
        std::vector<download> todo;
        for (size_t i = 0; i < manifest["layers"].size(); ++i) {
            const json& l = manifest["layers"][i];
            digest d = digest::parse(l.value("digest", ""));
            if (s.has_blob(d)) {
                say(short_id(d) + ": already exists");
                ++result.layers_present;
                continue;
            }
            bool dup = false;
            for (const auto& t : todo) dup = dup || t.blob == d;
            if (dup) continue;
            todo.push_back({i, d, l.value("size", int64_t{-1}), s.temp_path("pull"), layer_diff_ids[i], chains[i], ""});
            undo.temp(todo.back().temp);
            if (!s.has_layer(chains[i])) {
                todo.back().unpack_dir = s.temp_path("layer");
                undo.temp(todo.back().unpack_dir);
            }
        }
        std::mutex say_mutex;
        run_parallel(todo.size(), opts.jobs, [&](size_t k) {
            const download& job = todo[k];
            if (job.size < 0) throw error("layer " + job.blob.str() + ": no size in the manifest");
            progress_fn progress;
            std::string id = short_id(job.blob);
            if (opts.progress) progress = [&](uint64_t done, uint64_t total) { opts.progress(id, done, total); };
            fetch_layer(client, job, progress);
            std::lock_guard lock(say_mutex);
            say(id + ": pulled " + human_size(static_cast<uint64_t>(job.size)));
        });

        // Everything arrived intact: into the store.
        for (const auto& job : todo) {
            s.adopt_blob(job.temp, job.blob);
            undo.adopted(job.blob);
            ++result.layers_fetched;
        }
        undo.put(config_text);
        if (chosen.media_type == media_docker_manifest) undo.put(chosen.body);  // the registry's own bytes, kept beside
        std::string manifest_text = chosen.media_type == media_manifest ? chosen.body : manifest.dump();
        result.manifest = undo.put(manifest_text);

        for (const auto& job : todo)
            if (!job.unpack_dir.empty()) s.adopt_layer(job.unpack_dir, job.chain);
        ensure_unpacked(s, load(s, result.manifest));  // layers whose blobs were here already

        result.name = ref.store_name();
        if (!result.name.empty())
            s.tag(result.name, result.manifest, media_manifest, static_cast<int64_t>(manifest_text.size()));
        undo.commit();
        return result;
    });
}

}  // namespace pieces::image
