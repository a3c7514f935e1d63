#include "core/build/builder.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/signals.h"
#include "core/build/piecefile.h"
#include "core/container/lifecycle.h"
#include "core/image/containers.h"
#include "core/image/fetch.h"
#include "core/image/image.h"
#include "core/image/layer.h"
#include "core/image/pull.h"
#include "core/image/rootfs.h"
#include "core/image/store.h"

namespace pieces::build {
namespace {

using json = nlohmann::json;
using image::digest;

const std::vector<std::string> default_shell = {"/bin/sh", "-c"};


bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }


// One build: the store, the image so far, and the variables in scope.
class builder {
public:
    builder(const build_options& o, image::store& s, const piecefile& pf, ignore_rules ignore)
        : o_(o), s_(s), pf_(pf), ignore_(std::move(ignore)) {}

    build_result run() {
        build_result result;
        int total = static_cast<int>(pf_.instructions.size());
        for (const instruction& ins : pf_.instructions) {
            ++step_;
            say("Step " + std::to_string(step_) + "/" + std::to_string(total) + " : " + ins.text);
            with_context(pf_.path + ":" + std::to_string(ins.line), [&] { one(ins); });
            if (cached_now_) ++result.cached;
        }
        if (!img_) throw error(pf_.path + ": no FROM or FROM_URL: nothing to build");
        result.steps = total;
        result.manifest = img_->manifest_digest;
        result.name = image::normalize_name(o_.tag.empty() ? default_name(base_kind_, base_ref_) : o_.tag);
        std::string manifest_text = s_.read_blob(img_->manifest_digest);
        s_.tag(result.name, img_->manifest_digest, image::media_manifest, static_cast<int64_t>(manifest_text.size()));
        return result;
    }

private:
    void say(const std::string& line) {
        if (o_.say) o_.say(line);
    }

    // ENV of the image so far and ARGs in scope: what ${...} sees (ENV wins, as in Docker).
    std::map<std::string, std::string> vars() const {
        std::map<std::string, std::string> v = args_;
        if (img_)
            for (const std::string& e : image::string_list(img_->runtime().value("Env", json())))
                v[e.substr(0, e.find('='))] = e.find('=') == std::string::npos ? "" : e.substr(e.find('=') + 1);
        return v;
    }

    std::string flag(const instruction& ins, const std::string& name) const {
        for (const auto& [k, v] : ins.flags)
            if (k == name) return v;
        return "";
    }

    void need_image(const instruction& ins) const {
        if (!img_) throw error(ins.keyword + " before FROM");
    }

    // A cached step's image, or nullopt. The key covers the parent image and what the step
    // reads beyond it.
    std::optional<image::image> lookup(const digest& key) {
        cached_now_ = false;
        if (o_.no_cache) return std::nullopt;
        std::optional<digest> hit = s_.cached(key);
        if (!hit) return std::nullopt;
        cached_now_ = true;
        say(" ---> cached " + hit->hex().substr(0, 12));
        return image::load(s_, *hit);
    }

    digest step_key(const std::string& what) const {
        return image::sha256_of((img_ ? img_->manifest_digest.str() : std::string("scratch")) + "\n" + what);
    }

    // Records the step: a new image from the current config plus an optional new layer.
    void commit(const digest& key, json config, const std::string& created_by, const std::optional<image::layer>& added) {
        std::string now = image::now_rfc3339();
        config["created"] = now;
        json history = {{"created", now}, {"created_by", created_by}, {"comment", "pieces build"}};
        if (!added) history["empty_layer"] = true;
        config["history"].push_back(history);
        std::vector<image::layer> layers = img_ ? img_->layers : std::vector<image::layer>{};
        if (added) layers.push_back(*added);
        img_ = image::commit(s_, std::move(config), layers);
        s_.remember(key, img_->manifest_digest);
        say(" ---> " + img_->manifest_digest.hex().substr(0, 12) + (added ? " (layer " + image::human_size(static_cast<uint64_t>(added->size)) + ")" : ""));
    }

    json current_config() const { return img_ ? img_->config : image::empty_config(); }

    // Metadata instructions: a change to the image config document, no layer. `canonical` is
    // the step's key and its history entry.
    template <typename Fn>
    void image_config_step(const instruction& ins, const std::string& canonical, Fn&& change) {
        need_image(ins);
        digest key = step_key(canonical);
        if (auto hit = lookup(key)) {
            img_ = std::move(*hit);
            return;
        }
        json cfg = current_config();
        change(cfg);
        commit(key, std::move(cfg), canonical, std::nullopt);
    }

    // The same for a change to the runtime settings (the document's "config" member).
    template <typename Fn>
    void config_step(const instruction& ins, const std::string& canonical, Fn&& change) {
        image_config_step(ins, canonical, [&](json& cfg) {
            if (!cfg.contains("config") || !cfg["config"].is_object()) cfg["config"] = json::object();
            change(cfg["config"]);
        });
    }

    std::vector<std::string> command_args(const instruction& ins) const {
        if (ins.exec_form) return ins.args;
        std::vector<std::string> shell = img_ ? image::string_list(img_->runtime().value("Shell", json())) : std::vector<std::string>{};
        if (shell.empty()) shell = default_shell;
        shell.push_back(ins.args.empty() ? "" : ins.args[0]);
        return shell;
    }

    // Flags this builder gives a meaning to; any other is refused, not ignored.
    void check_flags(const instruction& ins) const {
        for (const auto& [name, value] : ins.flags) {
            if ((ins.keyword == "COPY" || ins.keyword == "ADD") && name == "chown") continue;
            if (ins.keyword == "HEALTHCHECK") continue;  // all of its flags: parse_healthcheck
            if (ins.keyword == "COPY" && name == "from") continue;
            if ((ins.keyword == "FROM" || ins.keyword == "FROM_URL") && name == "platform") {
                if (value != "linux/" + image::oci_architecture())
                    throw error(ins.keyword + " --platform=" + value + ": this builder makes linux/" + image::oci_architecture() + " images only");
                continue;
            }
            throw error(ins.keyword + " --" + name + ": not supported by this builder");
        }
    }

    void one(const instruction& ins) {
        cached_now_ = false;
        check_flags(ins);
        const std::string& k = ins.keyword;
        if (k == "FROM") return from(ins);
        if (k == "FROM_URL") return from_url(ins);
        if (k == "ARG") return arg(ins);
        if (k == "RUN") return run_step(ins);
        if (k == "COPY" || k == "ADD") return copy_step(ins);
        auto v = vars();
        if (k == "ENV") {
            auto pairs = parse_key_values(ins, v);
            std::string canonical = "ENV";
            for (const auto& [key, value] : pairs) canonical += " " + key + "=" + value;
            return config_step(ins, canonical, [&](json& c) {
                std::vector<std::string> env = image::string_list(c.value("Env", json()));
                for (const auto& [key, value] : pairs) {
                    std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
                    env.push_back(key + "=" + value);
                }
                c["Env"] = env;
            });
        }
        if (k == "LABEL") {
            auto pairs = parse_key_values(ins, v);
            std::string canonical = "LABEL";
            for (const auto& [key, value] : pairs) canonical += " " + key + "=" + value;
            return config_step(ins, canonical, [&](json& c) {
                for (const auto& [key, value] : pairs) c["Labels"][key] = value;
            });
        }
        if (k == "WORKDIR") {
            std::string dir = expand(ins.args.at(0), v, ins.escape);
            std::string old = img_ ? img_->runtime().value("WorkingDir", std::string()) : "";
            if (dir.empty() || dir[0] != '/') dir = (old.empty() ? std::string("/") : old + "/") + dir;
            return config_step(ins, "WORKDIR " + dir, [&](json& c) { c["WorkingDir"] = dir; });
        }
        if (k == "USER") {
            std::string user = expand(ins.args.at(0), v, ins.escape);
            return config_step(ins, "USER " + user, [&](json& c) { c["User"] = user; });
        }
        if (k == "CMD" || k == "ENTRYPOINT") {
            std::vector<std::string> cmd = command_args(ins);
            std::string field = k == "CMD" ? "Cmd" : "Entrypoint";
            return config_step(ins, k + " " + json(cmd).dump(), [&](json& c) {
                c[field] = cmd;
                // A new entrypoint drops the base image's Cmd, as Docker does.
                if (k == "ENTRYPOINT" && !saw_cmd_) c.erase("Cmd");
                if (k == "CMD") saw_cmd_ = true;
            });
        }
        if (k == "EXPOSE") {
            std::vector<std::string> ports = expand_words(ins.args.at(0), v, ins.escape);
            for (auto& p : ports)
                if (p.find('/') == std::string::npos) p += "/tcp";
            return config_step(ins, "EXPOSE " + json(ports).dump(), [&](json& c) {
                for (const auto& p : ports) c["ExposedPorts"][p] = json::object();
            });
        }
        if (k == "SHELL") {
            return config_step(ins, "SHELL " + json(ins.args).dump(), [&](json& c) { c["Shell"] = ins.args; });
        }
        if (k == "VOLUME") {
            std::vector<std::string> paths;
            if (ins.exec_form) {
                for (const auto& a : ins.args) paths.push_back(expand(a, v, ins.escape));
            } else {
                paths = expand_words(ins.args.at(0), v, ins.escape);
            }
            for (const auto& p : paths)
                if (p.empty()) throw error("VOLUME: a path cannot be empty");
            return config_step(ins, "VOLUME " + json(paths).dump(), [&](json& c) {
                for (const auto& p : paths) c["Volumes"][p] = json::object();
            });
        }
        if (k == "STOPSIGNAL") {
            std::string signal = expand(ins.args.at(0), v, ins.escape);
            with_context("STOPSIGNAL", [&] { return parse_signal(signal); });
            return config_step(ins, "STOPSIGNAL " + signal, [&](json& c) { c["StopSignal"] = signal; });
        }
        if (k == "HEALTHCHECK") {
            json check = healthcheck_json(parse_healthcheck(ins));
            return config_step(ins, "HEALTHCHECK " + check.dump(), [&](json& c) { c["Healthcheck"] = check; });
        }
        if (k == "ONBUILD") {
            const std::string& trigger = ins.args.at(0);
            return config_step(ins, "ONBUILD " + trigger, [&](json& c) {
                if (!c.contains("OnBuild") || !c["OnBuild"].is_array()) c["OnBuild"] = json::array();
                c["OnBuild"].push_back(trigger);
            });
        }
        if (k == "MAINTAINER") {
            const std::string& name = ins.args.at(0);
            return image_config_step(ins, "MAINTAINER " + name, [&](json& cfg) { cfg["author"] = name; });
        }
        throw error(k + ": not supported by this builder");
    }

    // Docker's form of a health check in the image config: unset durations and retries left out.
    static json healthcheck_json(const healthcheck& h) {
        json out = {{"Test", h.test}};
        for (const auto& [field, value] : {std::pair<const char*, int64_t>{"Interval", h.interval},
                                           {"Timeout", h.timeout},
                                           {"StartPeriod", h.start_period},
                                           {"StartInterval", h.start_interval},
                                           {"Retries", h.retries}})
            if (value != 0) out[field] = value;
        return out;
    }

    // The base image's ONBUILD triggers run right after its FROM, as if written there; the
    // image they make does not pass them on.
    void run_triggers(const instruction& from) {
        std::vector<std::string> triggers = image::string_list(img_->runtime().value("OnBuild", json()));
        if (triggers.empty()) return;
        // Dropped from the config the next step commits; step keys still name the base, whose
        // digest fixes its triggers, so the cache stays sound.
        img_->config["config"].erase("OnBuild");
        digest base = img_->manifest_digest;
        say(" # Executing " + std::to_string(triggers.size()) + " build trigger" + (triggers.size() == 1 ? "" : "s"));
        for (const std::string& text : triggers) {
            say("Trigger : " + text);
            with_context("ONBUILD trigger " + quote(text), [&] {
                instruction trigger = parse_trigger(text);
                trigger.line = from.line;
                one(trigger);
            });
        }
        // Triggers that committed nothing (ARG alone): the cleared config still needs an image.
        if (img_->manifest_digest == base) config_step(from, "ONBUILD triggers ran", [](json&) {});
        cached_now_ = false;
    }

    void arg(const instruction& ins) {
        for (auto [key, value] : parse_key_values(ins, vars())) {
            auto given = o_.build_args.find(key);
            if (given != o_.build_args.end()) value = given->second;
            args_[key] = value;
        }
    }

    // The words of a FROM/FROM_URL line without its "AS name", which starts a named stage.
    // The stage before it ends here and is kept for COPY --from.
    std::vector<std::string> start_stage(const instruction& ins) {
        if (img_) stages_.push_back({stage_name_, img_->manifest_digest});
        std::vector<std::string> words = expand_words(ins.args.at(0), vars(), pf_.escape);
        stage_name_.clear();
        if (words.size() >= 3) {
            std::string as = words[words.size() - 2];
            std::transform(as.begin(), as.end(), as.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
            if (as == "AS") {
                stage_name_ = words.back();
                words.resize(words.size() - 2);
            }
        }
        return words;
    }

    void from(const instruction& ins) {
        std::string ref = start_stage(ins).at(0);
        std::optional<digest> manifest = s_.resolve(ref);
        if (!manifest) {
            try {
                image::pull_options how;
                how.say = o_.say;
                manifest = image::pull(s_, ref, how).manifest;
            } catch (const error& e) {
                throw error("FROM " + ref + ": no such image in the store, and pulling it failed: " + e.what());
            }
        }
        img_ = image::load(s_, *manifest);
        base_kind_ = "FROM";
        base_ref_ = ref;
        saw_cmd_ = false;
        say(" ---> " + manifest->hex().substr(0, 12));
        run_triggers(ins);
    }

    void from_url(const instruction& ins) {
        std::vector<std::string> words = start_stage(ins);
        std::string url = words.at(0);
        std::optional<digest> wanted;
        if (words.size() > 1) wanted = digest::parse(words[1]);
        base_kind_ = "FROM_URL";
        base_ref_ = url;
        saw_cmd_ = false;
        img_.reset();
        // With a digest given, a cached step needs no download at all.
        if (wanted) {
            if (auto hit = lookup(step_key("FROM_URL " + wanted->str()))) {
                img_ = std::move(*hit);
                return;
            }
        }
        std::string download = s_.temp_path("download");
        std::string unpacked = s_.temp_path("layer");
        try {
            {
                unique_fd out = open_path(download, O_RDWR | O_CREAT | O_EXCL, 0600);
                image::fetch(url, out);
            }
            unique_fd in = open_path(download, O_RDONLY);
            digest blob = image::sha256_of(in);
            if (wanted && blob != *wanted) throw error("FROM_URL " + url + ": digest mismatch: expected " + wanted->str() + ", got " + blob.str());
            digest key = step_key("FROM_URL " + blob.str());
            if (auto hit = lookup(key)) {
                img_ = std::move(*hit);
                ::unlink(download.c_str());
                return;
            }
            // The tarball becomes the base layer; as a layer blob it must be a tar, gzip or
            // zstd (xz, bzip2: re-packed as gzip from the unpacked tree).
            if (::mkdir(unpacked.c_str(), 0755) < 0) throw_errno("mkdir", quote(unpacked));
            unique_fd dir = open_path(unpacked, O_RDONLY | O_DIRECTORY);
            ::lseek(in.get(), 0, SEEK_SET);
            image::layer_digests got = image::unpack_layer(in, dir, {.allow_devices = true});
            image::layer l;
            l.media_type = layer_media_type(in);
            if (l.media_type.empty()) {
                std::string repacked = s_.temp_path("blob");
                unique_fd out = open_path(repacked, O_RDWR | O_CREAT | O_EXCL, 0600);
                got = image::pack_layer(dir, out);
                s_.adopt_blob(repacked, got.blob);
                l.media_type = image::media_layer_gzip;
                ::unlink(download.c_str());
            } else {
                s_.adopt_blob(download, got.blob);
            }
            l.blob = got.blob;
            l.diff_id = got.diff_id;
            l.size = static_cast<int64_t>(got.blob_size);
            s_.adopt_layer(unpacked, l.diff_id);
            commit(key, image::empty_config(), "FROM_URL " + url, l);
        } catch (...) {
            ::unlink(download.c_str());
            remove_all(unpacked);
            throw;
        }
    }

    // The OCI media type of a layer blob from its first bytes; empty when it needs re-packing.
    static std::string layer_media_type(borrowed_fd blob) {
        unsigned char head[6] = {};
        ssize_t n = ::pread(blob.get(), head, sizeof head, 0);
        if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return image::media_layer_gzip;
        if (n >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) return image::media_layer_zstd;
        if (n >= 6 && head[0] == 0xfd && head[1] == '7' && head[2] == 'z' && head[3] == 'X' && head[4] == 'Z') return "";
        if (n >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h') return "";
        return image::media_layer_tar;
    }

    // A step that changes files: the image mounted with a fresh upper directory, `work` run on
    // it, the upper directory becoming the new layer (as a blob, and as the unpacked layer).
    template <typename Fn>
    void layer_step(const digest& key, const std::string& created_by, Fn&& work) {
        std::string dir = s_.temp_path("step");
        if (::mkdir(dir.c_str(), 0700) < 0) throw_errno("mkdir", quote(dir));
        try {
            image::ensure_unpacked(s_, *img_);
            std::string rootfs = image::mount_image(s_, *img_, dir);
            work(dir, rootfs);
            image::unmount_image(dir);
            std::string blob_tmp = s_.temp_path("blob");
            image::layer_digests got;
            {
                unique_fd upper = open_path(dir + "/upper", O_RDONLY | O_DIRECTORY);
                unique_fd out = open_path(blob_tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
                got = image::pack_layer(upper, out);
            }
            s_.adopt_blob(blob_tmp, got.blob);
            image::layer l{got.blob, image::media_layer_gzip, static_cast<int64_t>(got.blob_size), got.diff_id};
            std::vector<digest> ids;
            for (const auto& existing : img_->layers) ids.push_back(existing.diff_id);
            ids.push_back(got.diff_id);
            s_.adopt_layer(dir + "/upper", image::chain_id(ids));
            remove_all(dir);
            commit(key, current_config(), created_by, l);
        } catch (...) {
            try {
                image::unmount_image(dir);
            } catch (...) {
            }
            remove_all(dir);
            throw;
        }
    }

    void run_step(const instruction& ins) {
        need_image(ins);
        std::vector<std::string> cmd = command_args(ins);
        // Build arguments reach RUN as environment, and so are part of its key.
        std::string arg_text;
        for (const auto& [k, v] : args_) arg_text += k + "=" + v + "\n";
        digest key = step_key("RUN " + json(cmd).dump() + "\n" + arg_text);
        if (auto hit = lookup(key)) {
            img_ = std::move(*hit);
            return;
        }
        layer_step(key, "RUN " + (ins.exec_form ? json(cmd).dump() : ins.args.at(0)), [&](const std::string& dir, const std::string& rootfs) {
            image::run_request r;
            r.entrypoint = std::vector<std::string>{};
            r.cmd = cmd;
            std::vector<std::string> env = image::string_list(img_->runtime().value("Env", json()));
            for (const auto& [k, v] : args_)
                if (std::none_of(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(k + "=", 0) == 0; }))
                    r.env.push_back(k + "=" + v);
            std::string id = "build-" + img_->manifest_digest.hex().substr(0, 12) + "-" + std::to_string(::getpid());
            json cfg = image::bundle_config(*img_, r, rootfs, id);
            write_file_atomic(dir + "/config.json", cfg.dump(2), 0600);
            container::create_options copts;
            copts.root = image::state_root(o_.store_root);
            copts.id = id;
            copts.bundle = dir;
            int code = container::run(copts, container::run_options{});
            if (code != 0) throw error("RUN " + ins.args.at(0) + ": exited with status " + std::to_string(code));
        });
    }

    // The context's files a COPY/ADD source names (wildcards in its last component), each a
    // path relative to the context.
    std::vector<std::string> sources(const std::string& pattern, const std::string& top, bool filtered) const {
        std::string clean;
        for (const auto& c : split_components(pattern)) {
            if (c == "..") throw error("source " + quote(pattern) + " leaves the build context");
            clean += (clean.empty() ? "" : "/") + c;
        }
        if (!has_glob(clean)) return {clean};
        std::string parent = parent_of(clean), base = base_of(clean);
        if (has_glob(parent)) throw error("source " + quote(pattern) + ": wildcards only in the last component");
        unique_fd ctx = open_path(top, O_PATH | O_DIRECTORY);
        unique_fd d = open_in_root(ctx, parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY);
        std::vector<std::string> out;
        DIR* listing = ::fdopendir(::dup(d.get()));
        if (!listing) throw_errno("read", quote(parent));
        while (dirent* e = ::readdir(listing)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            std::string rel = parent.empty() ? name : parent + "/" + name;
            if (::fnmatch(base.c_str(), name.c_str(), FNM_PERIOD) == 0 && !(filtered && ignore_.excluded(rel))) out.push_back(rel);
        }
        ::closedir(listing);
        std::sort(out.begin(), out.end());
        if (out.empty()) throw error("nothing matches " + quote(pattern));
        return out;
    }

    // The content a COPY/ADD reads, hashed: paths, types, modes and bytes (owners come from --chown).
    void hash_source(image::sha256& h, borrowed_fd ctx, const std::string& rel) const {
        struct stat st {};
        int fd = try_open_in_root(ctx, rel, O_PATH | O_NOFOLLOW);
        if (fd < 0) throw_errno_code(-fd, "source", quote(rel));
        unique_fd f(fd);
        if (::fstat(f.get(), &st) < 0) throw_errno("stat", quote(rel));
        h.update(rel + "\n" + std::to_string(st.st_mode) + "\n");
        if (S_ISREG(st.st_mode)) {
            unique_fd data = open_in_root(ctx, rel, O_RDONLY | O_NOFOLLOW);
            h.update(image::sha256_of(data).str());
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = ::readlinkat(f.get(), "", target, sizeof target);
            if (n > 0) h.update(target, static_cast<size_t>(n));
        } else if (S_ISDIR(st.st_mode)) {
            unique_fd d = open_in_root(ctx, rel, O_RDONLY | O_DIRECTORY);
            DIR* listing = ::fdopendir(::dup(d.get()));
            if (!listing) throw_errno("read", quote(rel));
            std::vector<std::string> names;
            while (dirent* e = ::readdir(listing))
                if (std::string n = e->d_name; n != "." && n != "..") names.push_back(n);
            ::closedir(listing);
            std::sort(names.begin(), names.end());
            for (const auto& n : names) {
                std::string child = rel == "." ? n : rel + "/" + n;
                if (!ignore_.excluded(child)) hash_source(h, ctx, child);
            }
        }
    }

    static bool is_archive_name(const std::string& name) {
        for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst"})
            if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
                return true;
        return false;
    }

    void copy_step(const instruction& ins) {
        need_image(ins);
        bool add = ins.keyword == "ADD";
        std::vector<std::string> words;
        if (ins.exec_form) {
            for (const auto& a : ins.args) words.push_back(expand(a, vars(), ins.escape));
        } else {
            words = expand_words(ins.args.at(0), vars(), ins.escape);
        }
        if (words.size() < 2) throw error(ins.keyword + " needs a source and a destination");
        std::string dest = words.back();
        words.pop_back();
        std::string workdir = img_->runtime().value("WorkingDir", std::string());
        if (dest.empty() || dest[0] != '/') dest = (workdir.empty() ? std::string("/") : workdir + "/") + dest;
        bool into_dir = dest.back() == '/' || words.size() > 1;
        std::string chown = expand(flag(ins, "chown"), vars(), ins.escape);

        // --from: the sources are in an earlier stage or an image, mounted read-only for the
        // step; its manifest digest stands for their content in the key.
        std::string from = expand(flag(ins, "from"), vars(), ins.escape);
        std::string top = o_.context;
        std::string from_dir;
        std::optional<digest> from_image;
        if (!from.empty()) from_image = stage_or_image(from);
        struct unmount_on_exit {
            std::string dir;
            ~unmount_on_exit() {
                if (dir.empty()) return;
                try {
                    image::unmount_image(dir);
                } catch (...) {
                }
                remove_all(dir);
            }
        } from_mount;
        if (from_image) {
            image::image src = image::load(s_, *from_image);
            image::ensure_unpacked(s_, src);
            from_mount.dir = s_.temp_path("from");
            if (::mkdir(from_mount.dir.c_str(), 0700) < 0) throw_errno("mkdir", quote(from_mount.dir));
            top = image::mount_image(s_, src, from_mount.dir, image::upper_kind::none);
        }
        bool filtered = !from_image;

        // What is read: context files (hashed), an image's files (its digest), or URLs (named;
        // fetched at build time).
        unique_fd ctx = open_path(top, O_PATH | O_DIRECTORY);
        image::sha256 h;
        h.update(ins.keyword + "\n" + dest + "\n" + chown + "\n");
        if (from_image) h.update("from " + from_image->str() + "\n");
        std::vector<std::string> files, urls;
        for (const auto& w : words) {
            if (add && image::is_url(w)) {
                urls.push_back(w);
                h.update("url " + w + "\n");
                continue;
            }
            for (const auto& rel : sources(w, top, filtered)) {
                if (filtered && ignore_.excluded(rel)) throw error("source " + quote(rel) + " is excluded by .piecesignore");
                files.push_back(rel);
                if (from_image) h.update("path " + rel + "\n");
                else hash_source(h, ctx, rel);
            }
        }
        if (files.size() + urls.size() > 1) into_dir = true;
        digest key = step_key(h.finish().str());
        if (auto hit = lookup(key)) {
            img_ = std::move(*hit);
            return;
        }
        layer_step(key, ins.text, [&](const std::string&, const std::string& rootfs) {
            copy_options opts;
            opts.owner = std::pair<uid_t, gid_t>{0, 0};
            if (!chown.empty()) {
                json u = image::resolve_user(chown, rootfs);
                opts.owner = std::pair<uid_t, gid_t>{u["uid"].get<uid_t>(), u["gid"].get<gid_t>()};
            }
            unique_fd root = open_path(rootfs, O_PATH | O_DIRECTORY);
            for (const auto& rel : files) copy_source(ctx, rel, root, dest, into_dir, add, opts, filtered);
            for (const auto& url : urls) {
                std::string target = into_dir ? dest + "/" + base_of(url) : dest;
                unique_fd parent = mkdir_all_in_root(root, parent_of(target));
                unique_fd dir(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
                std::string name = base_of(target);
                ::unlinkat(dir.get(), name.c_str(), 0);
                unique_fd out(::openat(dir.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
                if (!out) throw_errno("create", quote(target));
                image::fetch(url, out);
                if (::fchown(out.get(), opts.owner->first, opts.owner->second) < 0) throw_errno("chown", quote(target));
            }
        });
    }

    // COPY --from's source: a stage by name or index (the last of that name), else an image.
    digest stage_or_image(const std::string& from) const {
        for (auto it = stages_.rbegin(); it != stages_.rend(); ++it)
            if (!it->first.empty() && it->first == from) return it->second;
        if (!from.empty() && from.find_first_not_of("0123456789") == std::string::npos) {
            size_t index = std::stoul(from);
            if (index < stages_.size()) return stages_[index].second;
            throw error("COPY --from=" + from + ": there is no stage " + from + " before this one");
        }
        if (std::optional<digest> d = s_.resolve(from)) return *d;
        throw error("COPY --from=" + from + ": no earlier stage and no image in the store has that name");
    }

    void copy_source(borrowed_fd ctx, const std::string& rel, borrowed_fd root, const std::string& dest, bool into_dir, bool add,
                     const copy_options& opts, bool filtered) const {
        struct stat st {};
        unique_fd src = open_in_root(ctx, rel, O_PATH | O_NOFOLLOW);
        if (::fstat(src.get(), &st) < 0) throw_errno("stat", quote(rel));
        copy_options copy = opts;
        if (filtered) copy.skip = [&](const std::string& below) { return ignore_.excluded(rel == "." ? below : rel + "/" + below); };
        if (S_ISDIR(st.st_mode)) {
            // A directory's contents go into the destination, as Docker copies them.
            unique_fd from = open_in_root(ctx, rel, O_RDONLY | O_DIRECTORY);
            unique_fd to_path = mkdir_all_in_root(root, dest);
            unique_fd to(::openat(to_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!to) throw_errno("open", quote(dest));
            copy_tree(from, to, rel, copy);
            return;
        }
        if (add && S_ISREG(st.st_mode) && is_archive_name(rel)) {
            // ADD unpacks a local archive into the destination directory.
            unique_fd archive = open_in_root(ctx, rel, O_RDONLY);
            unique_fd to = mkdir_all_in_root(root, dest);
            unique_fd dir(::openat(to.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            image::unpack_layer(archive, dir, {});
            return;
        }
        std::string target = into_dir ? dest + "/" + base_of(rel) : dest;
        unique_fd parent = mkdir_all_in_root(root, parent_of(target));
        unique_fd to(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        unique_fd from_dir = open_in_root(ctx, parent_of(rel).empty() ? "." : parent_of(rel), O_RDONLY | O_DIRECTORY);
        copy_entry(from_dir, base_of(rel), to, base_of(target), opts);
    }

    const build_options& o_;
    image::store& s_;
    const piecefile& pf_;
    ignore_rules ignore_;
    std::optional<image::image> img_;
    std::map<std::string, std::string> args_;
    std::string base_kind_, base_ref_;
    std::vector<std::pair<std::string, digest>> stages_;  ///< finished stages: name (maybe empty), image
    std::string stage_name_;                              ///< the current stage's name
    int step_ = 0;
    bool cached_now_ = false;
    bool saw_cmd_ = false;
};

std::string find_piecefile(const build_options& o) {
    if (!o.file.empty()) return o.file;
    for (const char* name : {"/Piecefile", "/Dockerfile"})
        if (::access((o.context + name).c_str(), F_OK) == 0) return o.context + name;
    throw error("no Piecefile (or Dockerfile) in " + quote(o.context) + " (give one with -f)");
}

}  // namespace

std::string default_name(const std::string& keyword, const std::string& base) {
    if (keyword == "FROM_URL") {
        std::string name = base.substr(base.find_last_of('/') + 1);
        name = name.substr(0, name.find('?'));
        for (const char* ext : {".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2", ".tgz", ".txz", ".tar"})
            if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0) {
                name.resize(name.size() - std::strlen(ext));
                break;
            }
        std::string out;
        for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')
                                       ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                                       : '-';
        return out.empty() ? "image" : out;
    }
    // "docker.io/library/ubuntu:22.04" -> "ubuntu-22.04": the last path component, then the tag.
    std::string ref = base.substr(0, base.find('@'));
    size_t slash = ref.rfind('/');
    size_t colon = ref.rfind(':');
    std::string name = ref.substr(slash == std::string::npos ? 0 : slash + 1);
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
        name = ref.substr(slash == std::string::npos ? 0 : slash + 1, colon - (slash == std::string::npos ? 0 : slash + 1)) + "-" + ref.substr(colon + 1);
    }
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return name;
}

build_result build(const build_options& opts) {
    std::string file = find_piecefile(opts);
    std::string shown = base_of(file);
    piecefile pf = with_context(quote(file), [&] { return parse_piecefile(read_file(file), shown); });
    ignore_rules ignore;
    for (const char* name : {"/.piecesignore", "/.dockerignore"}) {
        if (::access((opts.context + name).c_str(), F_OK) == 0) {
            ignore = ignore_rules::parse(read_file(opts.context + name));
            break;
        }
    }
    image::store s = image::store::open(opts.store_root, true);
    builder b(opts, s, pf, std::move(ignore));
    return b.run();
}

}  // namespace pieces::build
