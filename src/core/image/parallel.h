// A few jobs at a time on worker threads, for blob transfers (pull downloads, push uploads).
#pragma once

#include <cstddef>
#include <functional>

namespace pieces::image {

/// Calls `job(i)` for each i below `count`, on at most `workers` threads at once. After the first
/// job that throws, no new job starts; the others finish, and that first exception is rethrown.
void run_parallel(size_t count, unsigned workers, const std::function<void(size_t)>& job);

}  // namespace pieces::image
