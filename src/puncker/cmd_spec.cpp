#include <fcntl.h>
#include <unistd.h>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/spec/default_spec.h"
#include "puncker/commands.h"

namespace puncker {

command add_spec(CLI::App& app, context&) {
    auto* sub = app.add_subcommand("spec", "create a new specification file");
    auto bundle = std::make_shared<std::string>(".");
    auto rootless = std::make_shared<bool>(false);
    sub->add_option("-b,--bundle", *bundle, "path to the bundle directory");
    sub->add_flag("--rootless", *rootless, "generate a configuration for a rootless container");
    return {sub, [=] {
                std::string path = *bundle + "/config.json";
                std::string text = pieces::spec::default_config(*rootless).dump(1, '\t') + "\n";
                int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
                if (fd < 0) {
                    if (errno == EEXIST) throw pieces::error("File " + path + " exists. Remove it first");
                    pieces::throw_errno("create", pieces::quote(path));
                }
                pieces::unique_fd f(fd);
                pieces::write_all(f, text, pieces::quote(path));
            }};
}

}  // namespace puncker
