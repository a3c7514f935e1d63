#include "core/image/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pieces::image {

void run_parallel(size_t count, unsigned workers, const std::function<void(size_t)>& job) {
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::exception_ptr failure;
    auto worker = [&] {
        for (size_t k = next++; k < count; k = next++) {
            {
                std::lock_guard lock(mu);
                if (failure) return;
            }
            try {
                job(k);
            } catch (...) {
                std::lock_guard lock(mu);
                if (!failure) failure = std::current_exception();
                return;
            }
        }
    };
    std::vector<std::thread> threads;
    size_t n = std::min<size_t>(std::max(1u, workers), count);
    for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace pieces::image
