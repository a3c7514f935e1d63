#include "core/linux/hooks.h"

#include <cstring>

#include "core/base/child_process.h"
#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/log.h"

namespace pieces::linux_ {
namespace {

void run_hook(const spec::hook& h, const std::string& state_json, std::string_view stage, size_t index) {
    std::string what = std::string(stage) + " hook #" + std::to_string(index) + " " + quote(h.path);
    child_program p;
    p.path = h.path;
    p.argv = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
    p.env = &h.env;
    p.merge_stderr = true;
    p.timeout_seconds = h.timeout;
    p.output_limit = 65536;
    child_result r = with_context(what, [&] { return run_child(p, state_json); });
    if (r.spawn_error) throw error(what + " could not be run: " + std::strerror(r.spawn_error), r.spawn_error);
    std::string tail = last_line(r.out);
    if (r.signal)
        throw error(what + " was killed by signal " + std::to_string(r.signal) + (tail.empty() ? "" : ": " + tail));
    if (r.status != 0)
        throw error(what + " exited with status " + std::to_string(r.status) + (tail.empty() ? "" : ": " + tail));
}

}  // namespace

void run_hooks(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage) {
    for (size_t i = 0; i < hooks.size(); ++i) run_hook(hooks[i], state_json, stage, i);
}

void run_hooks_warn(const std::vector<spec::hook>& hooks, const std::string& state_json, std::string_view stage) {
    for (size_t i = 0; i < hooks.size(); ++i) {
        try {
            run_hook(hooks[i], state_json, stage, i);
        } catch (const std::exception& e) {
            log::warning(e.what());
        }
    }
}

}  // namespace pieces::linux_
