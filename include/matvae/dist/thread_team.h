// Ranks as threads of one process: data-parallel training across a machine's cores.
//
// Why: a step of these small models on two threads of ATen's intra-op parallelism keeps only part
// of its gain, because most of its operations are too small to split well, while two copies of the
// model each training half of the batch on one thread run close to twice as fast as one (README,
// Performance). A ThreadTeam runs `world` ranks as threads, each a one-thread rank of data-parallel
// training (Collectives), with the collectives done in shared memory: a gradient sum is a pass over
// the ranks' own gradient tensors, not a socket's round trip.
//
// Every collective is a barrier of all ranks. When a rank fails, the team breaks: the others stop
// at their next collective instead of waiting for it, and run() rethrows the failure.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "matvae/dist/collectives.h"

namespace matvae {

class ThreadTeam {
 public:
  explicit ThreadTeam(int64_t world);
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int64_t world() const { return world_; }

  /// Runs rank(r) for r in 0..world-1, rank 0 on the calling thread and every other on a thread of
  /// its own, each with LibTorch on one thread. Returns when every rank has returned; if any threw,
  /// rethrows the failure of the lowest rank that failed first-hand (not merely stopped because
  /// another did).
  void run(const std::function<void(Collectives&)>& rank);

 private:
  class Member;
  friend class Member;

  /// Waits until every rank has arrived; throws when the team is broken, or when a rank that has
  /// returned leaves this one waiting (ranks that disagree on their collectives).
  void arrive_and_wait();
  void fail(int64_t rank, std::exception_ptr error);

  const int64_t world_;
  std::mutex mutex_;
  std::condition_variable arrived_cv_;
  int64_t arrived_ = 0;
  int64_t returned_ = 0;  // ranks whose work has returned
  std::atomic<uint64_t> generation_{0};  // written under the mutex; read without it while spinning
  bool broken_ = false;
  // What the ranks lay out for a collective between its barriers: one slot per rank.
  std::vector<std::vector<torch::Tensor>*> tensors_;
  std::vector<const torch::Tensor*> rows_;
  const std::string* root_bytes_ = nullptr;
  std::exception_ptr root_failure_;
  std::vector<std::exception_ptr> failures_;  // per rank: what it threw first-hand
};

}  // namespace matvae
