// Image commands: images, rmi, tag, inspect.
#include <cstdio>
#include <ctime>

#include <algorithm>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/containers.h"
#include "core/image/image.h"
#include "core/image/prune.h"
#include "core/image/store.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {


// "name:tag" -> {"name", "tag"} (the tag after the last colon past the last slash).
std::pair<std::string, std::string> split_tag(const std::string& name) {
    size_t slash = name.rfind('/');
    size_t colon = name.rfind(':');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return {name, ""};
    return {name.substr(0, colon), name.substr(colon + 1)};
}

}  // namespace

command add_images(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("images", "list the images in the store");
    auto quiet = std::make_shared<bool>(false);
    sub->add_flag("-q,--quiet", *quiet, "ids only");
    return {sub, [quiet, &ctx] {
                pieces::image::store s = pieces::image::store::open(ctx.root, false);
                auto names = s.names();
                std::sort(names.begin(), names.end());
                if (!*quiet) std::printf("%-32s  %-12s  %-12s  %-20s  %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
                for (const auto& [name, manifest] : names) {
                    if (*quiet) {
                        std::printf("%s\n", manifest.hex().substr(0, 12).c_str());
                        continue;
                    }
                    pieces::image::image img = pieces::image::load(s, manifest);
                    auto [repo, tag] = split_tag(name);
                    std::string created = img.config.value("created", std::string("-"));
                    std::printf("%-32s  %-12s  %-12s  %-20s  %s\n", repo.c_str(), tag.c_str(), manifest.hex().substr(0, 12).c_str(),
                                created.substr(0, 19).c_str(), pieces::image::human_size(static_cast<uint64_t>(img.size())).c_str());
                }
            }};
}

command add_rmi(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("rmi", "remove image names (the content goes with the last name)");
    auto names = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    sub->add_flag("-f,--force", *force, "remove even when a container uses the image");
    sub->add_option("image", *names, "image names or ids")->required();
    return {sub, [names, force, &ctx] {
                std::vector<std::string> in_use = pieces::image::images_in_use(ctx.root);
                pieces::image::store s = pieces::image::store::open(ctx.root, true);
                for (const auto& n : *names) {
                    std::optional<pieces::image::digest> d = s.resolve(n);
                    if (!d) throw pieces::error("no image " + pieces::quote(n) + " in the store");
                    if (!*force && std::find(in_use.begin(), in_use.end(), d->str()) != in_use.end())
                        throw pieces::error("image " + pieces::quote(n) + " is used by a container (remove it first, or use -f)");
                    // By name: that name. By id: every name of the image.
                    bool by_name = false;
                    for (const auto& [name, manifest] : s.names())
                        if (manifest == *d && (name == n || name == pieces::image::normalize_name(n))) by_name = true;
                    for (const auto& [name, manifest] : s.names()) {
                        if (manifest != *d) continue;
                        if (by_name && name != pieces::image::normalize_name(n)) continue;
                        s.untag(name);
                        std::printf("Untagged: %s\n", name.c_str());
                    }
                }
            }};
}

command add_tag(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("tag", "give an image another name");
    auto source = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>();
    sub->add_option("source", *source, "image name or id")->required();
    sub->add_option("target", *target, "new name[:tag]")->required();
    return {sub, [source, target, &ctx] {
                pieces::image::store s = pieces::image::store::open(ctx.root, true);
                std::optional<pieces::image::digest> d = s.resolve(*source);
                if (!d) throw pieces::error("no image " + pieces::quote(*source) + " in the store");
                s.tag(*target, *d, pieces::image::media_manifest, static_cast<int64_t>(s.read_blob(*d).size()));
            }};
}

command add_inspect(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("inspect", "a container (as a JSON array) or an image (its manifest and config) as JSON");
    auto name = std::make_shared<std::string>();
    auto type = std::make_shared<std::string>();
    sub->add_option("--type", *type, "container or image, when a name could be either")->check(CLI::IsMember({"container", "image"}));
    sub->add_option("name", *name, "container name or id, or image name or id")->required();
    return {sub, [name, type, &ctx] {
                // A container first, as the name is more likely to mean one; then an image.
                if (*type != "image") {
                    std::optional<nlohmann::json> c;
                    try {
                        c = pieces::image::inspect_container(ctx.root, *name);
                    } catch (const pieces::image::no_such_container&) {
                        if (*type == "container") throw;
                    }
                    if (c) {
                        std::printf("%s\n", nlohmann::json::array({*c}).dump(4).c_str());
                        return;
                    }
                }
                pieces::image::store s = pieces::image::store::open(ctx.root, false);
                std::optional<pieces::image::digest> d = s.resolve(*name);
                if (!d) {
                    if (type->empty()) throw pieces::error("no container or image " + pieces::quote(*name) + " (pieces ps -a and pieces images list them)");
                    throw pieces::error("no image " + pieces::quote(*name) + " in the store");
                }
                pieces::image::image img = pieces::image::load(s, *d);
                nlohmann::json names = nlohmann::json::array();
                for (const auto& [n, m] : s.names())
                    if (m == *d) names.push_back(n);
                nlohmann::json out = {{"Id", d->str()}, {"Names", names}, {"Manifest", img.manifest}, {"Config", img.config}};
                std::printf("%s\n", out.dump(2).c_str());
            }};
}

}  // namespace pieces_cli

namespace pieces_cli {

command add_prune(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("prune", "remove the build cache and what no image name or container uses");
    return {sub, [&ctx] {
                std::vector<pieces::image::digest> in_use;
                for (const std::string& d : pieces::image::images_in_use(ctx.root))
                    if (!d.empty()) in_use.push_back(pieces::image::digest::parse(d));
                pieces::image::store s = pieces::image::store::open(ctx.root, true);
                pieces::image::prune_result r = pieces::image::prune(s, in_use);
                std::printf("Deleted %d blobs, %d unpacked layers, %d build cache entries; %s freed\n", r.blobs, r.layers,
                            r.cache_entries, pieces::image::human_size(r.bytes).c_str());
            }};
}

}  // namespace pieces_cli
