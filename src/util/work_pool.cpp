// The work pool: workers take the next index from a claim (a shared counter, or the ranks' store);
// the calling thread only watches the stop flag, so that a Ctrl-C reaches every running item within
// 50 ms.
#include "matvae/util/work_pool.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace matvae {

void run_work_pool(size_t n, const std::function<void(size_t)>& item, std::atomic<bool>& halt,
                   const WorkPoolOptions& options) {
  std::atomic<size_t> next{0};
  const auto claim = [&]() -> std::optional<size_t> {
    const size_t i = next.fetch_add(1);
    return i < n ? std::optional<size_t>(i) : std::nullopt;
  };
  WorkPoolOptions o = options;
  o.workers = std::min<int64_t>(options.workers, static_cast<int64_t>(n));
  run_claimed_work(claim, item, halt, o);
}

void run_claimed_work(const std::function<std::optional<size_t>()>& claim, const std::function<void(size_t)>& item,
                      std::atomic<bool>& halt, const WorkPoolOptions& options) {
  std::mutex claim_mutex;
  const auto next = [&]() -> std::optional<size_t> {
    if (halt.load()) return std::nullopt;
    std::lock_guard<std::mutex> lock(claim_mutex);
    return claim();
  };
  std::mutex mutex;
  std::condition_variable done_cv;
  std::exception_ptr first_error;
  int64_t running = 0;

  auto worker = [&] {
    try {
      if (options.setup) options.setup();
      for (std::optional<size_t> i; (i = next());) item(*i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!first_error) first_error = std::current_exception();
      halt.store(true);
    }
    std::lock_guard<std::mutex> lock(mutex);
    --running;
    done_cv.notify_all();
  };

  const int64_t workers = std::max<int64_t>(1, options.workers);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex);
    running = workers;
  }
  for (int64_t w = 0; w < workers; ++w) {
    try {
      threads.emplace_back(worker);
    } catch (...) {  // no thread to be had: the ones started finish the work, or none does
      std::lock_guard<std::mutex> lock(mutex);
      running -= workers - w;
      if (w == 0) {
        first_error = std::current_exception();
        halt.store(true);
      }
      break;
    }
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (running > 0) {
      done_cv.wait_for(lock, std::chrono::milliseconds(50));
      if ((options.stop && options.stop->load()) || (options.halt_when && options.halt_when())) halt.store(true);
    }
  }
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace matvae
