// What data-parallel training asks of its ranks: their number, this one's index, and the few
// collectives of a step. Two kinds of ranks answer it: processes joined through c10d (RankGroup,
// rank_group.h), and threads of one process (ThreadTeam, thread_team.h), which split each batch
// over a machine's cores without the cost of sockets. The trainer and the objective's BatchShard
// see only this.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "matvae/util/machine.h"

namespace matvae {

/// Adds the seconds of its scope to a counter: a rank's time in its collectives.
struct CollectiveTimer {
  double& total;
  double start = steady_seconds();
  ~CollectiveTimer() { total += steady_seconds() - start; }
};

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int64_t rank() const = 0;
  virtual int64_t world() const = 0;
  bool is_root() const { return rank() == 0; }

  /// In place: every rank's tensors (each contiguous, float32 or float64; the same shapes on every
  /// rank) become their sums over the ranks. One call for all tensors of a step.
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  void all_reduce_sum(torch::Tensor& flat) {
    std::vector<torch::Tensor> one = {flat};
    all_reduce_sum(one);
  }
  /// The rows of every rank in rank order: rank r gives `local` with rows[r] rows (rows may differ
  /// between ranks; the rest of the shape may not). No gradient flows through the result.
  virtual torch::Tensor all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows) = 0;
  /// Returns once every rank has called it.
  virtual void barrier() = 0;
  /// Rank 0's `bytes` on every rank.
  virtual std::string broadcast_bytes(const std::string& bytes) = 0;
  /// Seconds this rank has spent in the collectives so far (waiting for the others included).
  virtual double collective_seconds() const = 0;

  /// Runs `work` on rank 0 only and passes its outcome to every rank: nothing, or a failure, so that
  /// a check rank 0 alone can make (a run folder, a file) stops every rank alike.
  virtual void from_root(const std::function<void()>& work) = 0;
  /// Rank 0's `value` on every rank.
  virtual std::string share_from_root(const std::string& value) = 0;
};

}  // namespace matvae
