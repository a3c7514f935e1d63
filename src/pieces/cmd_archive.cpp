// Archive commands: save (images -> an OCI or docker archive), load (an archive -> the store).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/archive.h"
#include "core/image/store.h"
#include "pieces/commands.h"

namespace pieces_cli {
namespace {

// The images named on the command line: by name they keep that name, by id they go unnamed.
std::vector<pieces::image::saved_image> resolve_images(const pieces::image::store& s, const std::vector<std::string>& args) {
    std::vector<pieces::image::saved_image> out;
    auto names = s.names();
    for (const auto& a : args) {
        std::optional<pieces::image::digest> d = s.resolve(a);
        if (!d) throw pieces::error("no image " + pieces::quote(a) + " in the store");
        std::optional<std::string> name;
        try {
            std::string n = pieces::image::normalize_name(a);
            if (std::find(names.begin(), names.end(), std::make_pair(n, *d)) != names.end()) name = n;
        } catch (const pieces::error&) {  // not a name: an id
        }
        out.push_back({*d, name});
    }
    return out;
}

// Writes through a temporary file beside `path`, renamed over it only when complete.
void save_to_file(const std::string& path, const std::function<void(pieces::borrowed_fd)>& write) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    pieces::unique_fd f = pieces::open_path(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    try {
        write(f);
        if (::fsync(f.get()) < 0) pieces::throw_errno("fsync", pieces::quote(tmp));
        if (::rename(tmp.c_str(), path.c_str()) < 0) pieces::throw_errno("rename", pieces::quote(tmp));
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

}  // namespace

command add_save(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("save", "write images to an archive (OCI, or docker's)");
    auto output = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("oci-archive");
    auto images = std::make_shared<std::vector<std::string>>();
    sub->add_option("-o,--output", *output, "the archive file (default: stdout, when it is not a terminal)");
    sub->add_option("--format", *format, "oci-archive (default) or docker-archive (what docker load reads)");
    sub->add_option("image", *images, "image names or ids")->required();
    return {sub, [output, format, images, &ctx] {
                pieces::image::archive_format f = pieces::image::parse_archive_format(*format);
                if (output->empty() && ::isatty(STDOUT_FILENO))
                    throw pieces::error("save: refusing to write an archive to a terminal (use -o FILE or redirect stdout)");
                pieces::image::store s = pieces::image::store::open(ctx.root, false);
                std::vector<pieces::image::saved_image> wanted = resolve_images(s, *images);
                pieces::with_context("save", [&] {
                    if (output->empty()) pieces::image::save_archive(s, wanted, f, STDOUT_FILENO);
                    else save_to_file(*output, [&](pieces::borrowed_fd fd) { pieces::image::save_archive(s, wanted, f, fd); });
                });
            }};
}

command add_load(CLI::App& app, context& ctx) {
    auto* sub = app.add_subcommand("load", "read images from an OCI or docker archive into the store");
    auto input = std::make_shared<std::string>();
    sub->add_option("-i,--input", *input, "the archive file (default: stdin)");
    return {sub, [input, &ctx] {
                std::string source = input->empty() ? "stdin" : pieces::quote(*input);
                std::vector<pieces::image::loaded_image> loaded = pieces::with_context("load " + source, [&] {
                    pieces::unique_fd file;
                    if (!input->empty()) file = pieces::open_path(*input, O_RDONLY);
                    else if (::isatty(STDIN_FILENO)) throw pieces::error("no archive on a terminal (use -i FILE or a pipe)");
                    // Shared while the archive is read (a `save` of this store may be what writes
                    // it), exclusive once load_archive commits.
                    pieces::image::store s = pieces::image::store::open(ctx.root, false);
                    return pieces::image::load_archive(s, file ? pieces::borrowed_fd(file) : pieces::borrowed_fd(STDIN_FILENO));
                });
                for (const auto& img : loaded) {
                    for (const auto& n : img.names) std::printf("Loaded image: %s\n", n.c_str());
                    if (img.names.empty()) std::printf("Loaded image ID: %s\n", img.manifest.str().c_str());
                }
            }};
}

}  // namespace pieces_cli
