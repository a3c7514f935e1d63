#include "core/image/push.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/image.h"
#include "core/image/parallel.h"
#include "core/image/registry.h"

namespace pieces::image {
namespace {

struct blob_job {
    digest blob;
    std::string mount_from;  ///< another repository of the same registry that has it, if the store knows one
};

bool holds(const image& img, const digest& d) {
    return img.config_digest == d || std::any_of(img.layers.begin(), img.layers.end(), [&](const layer& l) { return l.blob == d; });
}

// For each blob, a repository of the destination's registry (not the destination itself) that an
// image in the store was named after and that holds the blob: where it can be mounted from.
void find_mount_sources(const store& s, const reference& dest, std::vector<blob_job>& blobs) {
    for (const auto& [name, manifest] : s.names()) {
        std::optional<reference> other;
        try {
            other = reference::parse(name);
        } catch (const error&) {
            continue;
        }
        if (other->registry != dest.registry || other->repository == dest.repository) continue;
        image img = load(s, manifest);
        for (auto& b : blobs)
            if (b.mount_from.empty() && holds(img, b.blob)) b.mount_from = other->repository;
    }
}

}  // namespace

reference push_destination(const std::string& image, const std::string& dest) {
    if (dest.empty() && !reference::names_registry(image))
        throw error("push " + quote(image) + ": it names no registry; give the destination (pieces push " + image +
                    " HOST[:PORT]/NAME[:TAG])");
    reference r = reference::parse(dest.empty() ? image : dest);
    if (!r.digest.empty()) throw error("push to " + r.str() + ": give a tag, not a digest (the image's own digest is kept)");
    return r;
}

push_result push(const store& s, const std::string& image_name, const std::string& dest_text, const push_options& opts) {
    reference dest = push_destination(image_name, dest_text);
    return with_context("push " + dest.str(), [&] {
        std::optional<digest> id = s.resolve(image_name);
        if (!id) throw error("no image " + quote(image_name) + " in the store");
        image img = load(s, *id);
        std::string manifest_text = s.read_blob(*id);
        std::string media_type = img.manifest.value("mediaType", std::string(media_manifest));

        // The config and each distinct layer, all of which the store must have.
        std::vector<blob_job> blobs{{img.config_digest, {}}};
        for (const auto& l : img.layers)
            if (std::none_of(blobs.begin(), blobs.end(), [&](const blob_job& b) { return b.blob == l.blob; }))
                blobs.push_back({l.blob, {}});
        for (const auto& b : blobs)
            if (!s.has_blob(b.blob)) throw error("blob " + b.blob.str() + " of the image is not in the store");
        find_mount_sources(s, dest, blobs);

        registry_client client(dest, access::push);
        for (const auto& b : blobs)
            if (!b.mount_from.empty()) client.add_pull_scope(b.mount_from);
        client.connect();

        push_result result;
        result.destination = dest;
        std::mutex mu;
        run_parallel(blobs.size(), opts.jobs, [&](size_t k) {
            const blob_job& b = blobs[k];
            std::string short_id = b.blob.hex().substr(0, 12);
            std::string line;
            if (client.has_blob(b.blob)) {
                line = "already exists";
                std::lock_guard lock(mu);
                ++result.present;
            } else {
                unique_fd in = open_path(s.blob_path(b.blob), O_RDONLY);
                struct stat st{};
                if (::fstat(in.get(), &st) < 0) throw_errno("fstat", quote(s.blob_path(b.blob)));
                progress_fn progress;
                if (opts.progress) progress = [&](uint64_t done, uint64_t total) { opts.progress(short_id, done, total); };
                auto how = client.push_blob(b.blob, in, st.st_size, b.mount_from, progress);
                line = how == registry_client::pushed::mounted ? "mounted from " + b.mount_from
                                                               : "pushed " + human_size(static_cast<uint64_t>(st.st_size));
                std::lock_guard lock(mu);
                ++(how == registry_client::pushed::mounted ? result.mounted : result.uploaded);
            }
            std::lock_guard lock(mu);
            if (opts.say) opts.say(short_id + ": " + line);
        });

        client.put_manifest(dest.tag, manifest_text, media_type);
        result.manifest = *id;
        return result;
    });
}

}  // namespace pieces::image
