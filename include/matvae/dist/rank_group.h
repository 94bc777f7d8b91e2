// The ranks of a data-parallel job, joined through PyTorch's own c10d: a TCPStore hosted by rank 0
// (MASTER_ADDR:MASTER_PORT) for small values and claims, and a ProcessGroupGloo for the tensor
// collectives. Every call is bounded by the group's timeout; a failure of a collective or of the
// store is turned into one LostRankError that names the rank that went away (the ones that did not
// report themselves alive in the store), never a hang.
// BatchShard is the view the objective takes of one global batch split over the ranks.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "matvae/dist/environment.h"
#include "matvae/util/error.h"

namespace c10d {
class Store;
class ProcessGroupGloo;
}  // namespace c10d

namespace matvae {

/// A rank of the job ended or stopped answering; the message names it (rank() is -1 if unknown).
class LostRankError : public Error {
 public:
  LostRankError(const std::string& message, int64_t rank) : Error(message), rank_(rank) {}
  int64_t rank() const { return rank_; }

 private:
  int64_t rank_;
};

class RankGroup {
 public:
  /// Joins the ranks of `env` (world > 1): rank 0 starts the store, every rank connects and forms
  /// the Gloo group. Throws UsageError naming MASTER_PORT when rank 0 cannot listen on it, Error
  /// when rank 0's store cannot be reached within `timeout`.
  RankGroup(const RankEnv& env, std::chrono::milliseconds timeout);
  ~RankGroup();
  RankGroup(const RankGroup&) = delete;
  RankGroup& operator=(const RankGroup&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t world() const { return env_.world; }
  bool is_root() const { return env_.rank == 0; }

  /// In place: every rank's `flat` (contiguous) becomes the sum over ranks. One call for all tensors
  /// of a step: the caller packs them.
  void all_reduce_sum(torch::Tensor& flat);
  /// Rank 0's values of `flat` (contiguous) on every rank, in place.
  void broadcast(torch::Tensor& flat);
  /// The rows of every rank in rank order: rank r gives `local` with rows[r] rows (rows may differ
  /// between ranks; the rest of the shape may not). No gradient flows through the result.
  torch::Tensor all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows);
  /// Returns when every rank has reached the barrier `name`.
  void barrier(const std::string& name);

  /// The store's counter `key` after adding `value` (claims: the rank that sees 1 owns the key).
  int64_t add(const std::string& key, int64_t value);
  void set(const std::string& key, const std::string& value);
  /// Waits (within the timeout) for `key` and returns its value.
  std::string get(const std::string& key);

  /// Runs `work` on rank 0 only and passes its outcome to every rank: nothing, or the same
  /// UsageError or Error (named "rank 0: ..." on the others), so that a check rank 0 alone can
  /// make (a run folder, a file) stops every rank alike. Every rank must call it in the same order.
  void from_root(const std::function<void()>& work);
  /// Rank 0's `value` on every rank (through the store), in call order like from_root.
  std::string share_from_root(const std::string& value);

 private:
  [[noreturn]] void lost(const std::string& during, const std::exception& e);
  std::string next_key(const char* what);

  RankEnv env_;
  std::chrono::milliseconds timeout_;
  int64_t sequence_ = 0;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

/// How the rows of one global batch of `total` rows are split over the ranks: rank r takes rows
/// [offset, offset + rows), the first total % world ranks one more than the others. With no group
/// it is the whole batch on one process.
struct BatchShard {
  RankGroup* group = nullptr;
  int64_t total = 0, offset = 0, rows = 0;
  std::vector<int64_t> sizes;  // rows of every rank

  static BatchShard of(RankGroup* group, int64_t total);
  /// This rank's rows of a tensor that holds the whole batch.
  torch::Tensor slice(const torch::Tensor& whole) const { return whole.narrow(0, offset, rows); }
  /// The whole batch's rows, this rank's own being `local` itself (so gradient flows to them only)
  /// and the others' copies without gradient: a function of the gathered rows has, on this rank,
  /// the gradient of the whole batch's value with respect to this rank's rows.
  torch::Tensor gather(const torch::Tensor& local) const;
  /// The sum over ranks of a small tensor (no gradient).
  torch::Tensor sum(const torch::Tensor& local) const;
};

}  // namespace matvae
