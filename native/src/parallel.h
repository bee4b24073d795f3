// Row parallelism for the native core: a small std::thread pool per call, blocks of rows handed out dynamically.
#pragma once
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace dfl {

// threads <= 0 means one per hardware thread.
inline int resolve_threads(int threads) {
    if (threads > 0) return threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

// Block size that gives each of `threads` workers one contiguous share of n items.
inline int even_share(int n, int threads) {
    const int workers = std::max(1, std::min(resolve_threads(threads), n));
    return std::max(1, (n + workers - 1) / workers);
}

// Calls fn(begin, end) on the blocks [k * grain, min(n, (k + 1) * grain)) of [0, n), on up to `threads` threads
// (the caller's included). The first exception thrown by fn is rethrown once all threads have finished.
template <class Fn>
void parallel_for(int n, int threads, int grain, Fn&& fn) {
    if (n <= 0) return;
    grain = std::max(1, grain);
    const int blocks = (n + grain - 1) / grain;
    const int workers = std::min(resolve_threads(threads), blocks);
    if (workers <= 1) {
        fn(0, n);
        return;
    }
    std::atomic<int> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&]() {
        try {
            for (int b = next.fetch_add(1); b < blocks; b = next.fetch_add(1)) {
                const int begin = b * grain;
                fn(begin, std::min(n, begin + grain));
            }
        } catch (...) {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(workers - 1));
    for (int t = 1; t < workers; ++t) {
        try {
            pool.emplace_back(work);
        } catch (const std::system_error&) {
            break;  // no more threads available: the ones started (and this one) share the blocks
        }
    }
    work();
    for (auto& thread : pool) thread.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace dfl
