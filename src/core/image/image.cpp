#include "core/image/image.h"

#include <sys/utsname.h>
#include <time.h>

#include <cstdio>
#include <ctime>

#include "core/base/error.h"

namespace pieces::image {

digest chain_id(const std::vector<digest>& diff_ids) {
    if (diff_ids.empty()) return {};
    digest chain = diff_ids.front();
    for (size_t i = 1; i < diff_ids.size(); ++i) chain = sha256_of(chain.str() + " " + diff_ids[i].str());
    return chain;
}

digest image::chain_id(long n) const {
    std::vector<digest> ids;
    for (size_t i = 0; i < layers.size() && (n < 0 || static_cast<long>(i) < n); ++i) ids.push_back(layers[i].diff_id);
    return pieces::image::chain_id(ids);
}

int64_t image::size() const {
    int64_t total = 0;
    for (const auto& l : layers) total += l.size;
    return total;
}

image load(const store& s, const digest& manifest) {
    return with_context("image " + manifest.str().substr(7, 12), [&] {
        image img;
        img.manifest_digest = manifest;
        img.manifest = nlohmann::json::parse(s.read_blob(manifest), nullptr, false);
        if (img.manifest.is_discarded() || !img.manifest.is_object()) throw error("manifest: invalid JSON");
        if (!img.manifest.contains("config")) throw error("not an image manifest (an index?)");
        img.config_digest = digest::parse(img.manifest["config"].value("digest", ""));
        img.config = nlohmann::json::parse(s.read_blob(img.config_digest), nullptr, false);
        if (img.config.is_discarded() || !img.config.is_object()) throw error("config: invalid JSON");
        auto diff_ids = img.config.value("rootfs", nlohmann::json::object()).value("diff_ids", nlohmann::json::array());
        auto layers = img.manifest.value("layers", nlohmann::json::array());
        if (diff_ids.size() != layers.size())
            throw error("manifest lists " + std::to_string(layers.size()) + " layers, config " + std::to_string(diff_ids.size()) + " diff_ids");
        for (size_t i = 0; i < layers.size(); ++i) {
            layer l;
            l.blob = digest::parse(layers[i].value("digest", ""));
            l.media_type = layers[i].value("mediaType", media_layer_tar);
            l.size = layers[i].value("size", int64_t{0});
            l.diff_id = digest::parse(diff_ids[i].get<std::string>());
            img.layers.push_back(std::move(l));
        }
        return img;
    });
}

std::vector<std::string> string_list(const nlohmann::json& j) {
    std::vector<std::string> out;
    if (j.is_array())
        for (const auto& v : j)
            if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

std::string human_size(uint64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

std::string now_rfc3339() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
    return buf;
}

std::string oci_architecture() {
    utsname u{};
    ::uname(&u);
    std::string m = u.machine;
    if (m == "x86_64") return "amd64";
    if (m == "aarch64") return "arm64";
    if (m == "i686" || m == "i386") return "386";
    if (m.rfind("armv", 0) == 0) return "arm";
    return m;  // ppc64le, s390x, riscv64 are spelled alike
}

nlohmann::json empty_config() {
    return {{"architecture", oci_architecture()},
            {"os", "linux"},
            {"config", nlohmann::json::object()},
            {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}},
            {"history", nlohmann::json::array()}};
}

image commit(store& s, nlohmann::json config, const std::vector<layer>& layers) {
    nlohmann::json diff_ids = nlohmann::json::array();
    nlohmann::json descriptors = nlohmann::json::array();
    for (const auto& l : layers) {
        if (!s.has_blob(l.blob)) throw error("layer " + l.blob.str() + " is not in the store");
        diff_ids.push_back(l.diff_id.str());
        descriptors.push_back({{"mediaType", l.media_type}, {"digest", l.blob.str()}, {"size", l.size}});
    }
    config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
    std::string config_text = config.dump();
    digest config_digest = s.put_blob(config_text);
    nlohmann::json manifest = {
        {"schemaVersion", 2},
        {"mediaType", media_manifest},
        {"config", {{"mediaType", media_config}, {"digest", config_digest.str()}, {"size", config_text.size()}}},
        {"layers", descriptors}};
    digest manifest_digest = s.put_blob(manifest.dump());
    return load(s, manifest_digest);
}

}  // namespace pieces::image
