// The work pool runs every item exactly once over several threads, stops starting items once
// halted, and hands the first failure back to the caller after every worker has ended; tasks run
// one intra-op thread each keep the caller's grad mode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "matvae/util/threads.h"
#include "matvae/util/work_pool.h"

namespace {

TEST(WorkPool, RunsEveryItemOnceOnSeveralThreads) {
  std::vector<std::atomic<int>> runs(200);
  std::mutex m;
  std::set<std::thread::id> threads;
  int setups = 0;
  std::atomic<bool> halt{false};
  matvae::WorkPoolOptions o;
  o.workers = 3;
  o.setup = [&] {
    std::lock_guard<std::mutex> lock(m);
    ++setups;
  };
  matvae::run_work_pool(
      runs.size(),
      [&](size_t i) {
        ++runs[i];
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        std::lock_guard<std::mutex> lock(m);
        threads.insert(std::this_thread::get_id());
      },
      halt, o);
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].load(), 1) << "item " << i;
  EXPECT_EQ(setups, 3);
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "the caller only watches";
  EXPECT_FALSE(halt.load());
}

TEST(WorkPool, StopRaisesHaltAndNoFurtherItemStarts) {
  std::atomic<bool> stop{false}, halt{false};
  std::atomic<int> started{0};
  matvae::WorkPoolOptions o;
  o.workers = 2;
  o.stop = &stop;
  matvae::run_work_pool(
      100,
      [&](size_t) {
        if (++started == 1) stop.store(true);
        // A long item that ends early once halted, as training does.
        for (int t = 0; t < 400 && !halt.load(); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      },
      halt, o);
  EXPECT_TRUE(halt.load());
  EXPECT_GE(started.load(), 1);
  EXPECT_LE(started.load(), 2) << "items kept starting after the stop (one per worker at most)";
}

TEST(WorkPool, FirstFailureIsRethrownAfterTheOthersHalt) {
  std::atomic<bool> halt{false};
  std::atomic<int> started{0};
  std::atomic<bool> other_saw_halt{false};
  matvae::WorkPoolOptions o;
  o.workers = 2;
  try {
    matvae::run_work_pool(
        50,
        [&](size_t i) {
          ++started;
          if (i == 1) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            throw std::runtime_error("item 1 failed");
          }
          for (int t = 0; t < 1000; ++t) {
            if (halt.load()) {
              other_saw_halt.store(true);
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        },
        halt, o);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 1 failed");
  }
  EXPECT_TRUE(halt.load());
  EXPECT_TRUE(other_saw_halt.load()) << "the running item was not told to stop";
  EXPECT_EQ(started.load(), 2) << "items started after the failure";
}

TEST(WorkPool, NoItemsAndOneWorker) {
  std::atomic<bool> halt{false};
  int n = 0;
  matvae::run_work_pool(0, [&](size_t) { ++n; }, halt);
  EXPECT_EQ(n, 0);
  std::vector<size_t> order;
  matvae::run_work_pool(5, [&](size_t i) { order.push_back(i); }, halt);
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4})) << "one worker runs the items in order";
}

TEST(OneThreadEach, RunsEveryTaskOnceAtOneIntraOpThreadWithTheCallersGradMode) {
  const int before = at::get_num_threads();
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    at::set_num_threads(threads);
    for (const bool grad : {false, true}) {
      at::AutoGradMode mode(grad);
      std::vector<int> runs(7, 0), intra(7, -1), grads(7, -1);
      std::mutex m;
      std::set<std::thread::id> ids;
      matvae::run_one_thread_each(runs.size(), [&](size_t i) {
        ++runs[i];
        intra[i] = at::get_num_threads();
        grads[i] = at::GradMode::is_enabled();
        std::lock_guard<std::mutex> lock(m);
        ids.insert(std::this_thread::get_id());
      });
      EXPECT_EQ(runs, std::vector<int>(7, 1));
      EXPECT_EQ(intra, std::vector<int>(7, 1));
      EXPECT_EQ(grads, std::vector<int>(7, grad ? 1 : 0));
      // One thread: inline, on the caller's. Two: on workers of their own.
      EXPECT_EQ(ids.count(std::this_thread::get_id()), threads == 1 ? 1u : 0u);
    }
    // The caller keeps its own thread count.
    EXPECT_EQ(at::get_num_threads(), threads);
    EXPECT_THROW(matvae::run_one_thread_each(3, [](size_t i) {
                   if (i == 1) throw std::runtime_error("task 1");
                 }),
                 std::runtime_error);
  }
  at::set_num_threads(before);
}

}  // namespace
