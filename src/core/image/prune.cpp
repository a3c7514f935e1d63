#include "core/image/prune.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/image.h"

namespace pieces::image {

prune_result prune(store& s, const std::vector<digest>& in_use) {
    prune_result r;
    std::set<std::string> blobs, layers;
    std::vector<digest> roots = in_use;
    for (const auto& [name, manifest] : s.names()) roots.push_back(manifest);
    for (const digest& m : roots) {
        if (!s.has_blob(m)) continue;
        image img = load(s, m);
        blobs.insert(m.hex());
        blobs.insert(img.config_digest.hex());
        for (size_t i = 0; i < img.layers.size(); ++i) {
            blobs.insert(img.layers[i].blob.hex());
            layers.insert(img.chain_id(static_cast<long>(i + 1)).hex());
        }
    }
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(s.root() + "/cache", ec)) {
        fs::remove(e.path(), ec);
        ++r.cache_entries;
    }
    for (const auto& e : fs::directory_iterator(s.root() + "/blobs/sha256", ec)) {
        if (blobs.count(e.path().filename())) continue;
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0) r.bytes += static_cast<uint64_t>(st.st_size);
        fs::remove(e.path(), ec);
        ++r.blobs;
    }
    for (const auto& e : fs::directory_iterator(s.root() + "/layers", ec)) {
        if (layers.count(e.path().filename())) continue;
        remove_all(e.path());
        ++r.layers;
    }
    // Leftovers of commands that died half-way (we hold the store exclusively: none runs now).
    for (const auto& e : fs::directory_iterator(s.root() + "/tmp", ec)) remove_all(e.path());
    return r;
}

}  // namespace pieces::image
