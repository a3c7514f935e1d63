// `events`: a running container's statistics and OOM notices as a stream.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace pieces::container {

/// Streams a running container's events to `emit` until its init exits or its cgroup goes: a
/// stats event at once and then every `interval`, and {"type":"oom","id":...} each time its
/// memory cgroup runs out. The OOM watch is in place before the first stats event is emitted.
void stream_events(const std::string& root, const std::string& id, std::chrono::milliseconds interval,
                   const std::function<void(const nlohmann::json&)>& emit);

}  // namespace pieces::container
