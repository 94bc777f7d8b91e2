// The ranks of a distributed job, joined through PyTorch's own c10d: a TCPStore hosted by rank 0
// (MASTER_ADDR:MASTER_PORT) for small values, claims and waits, and a ProcessGroupGloo for the
// tensor collectives of data-parallel training. Every rank beats a heartbeat into the store from a
// thread of its own, so that a rank that dies or stops answering is named, never waited for
// forever: a collective is bounded by the group's timeout, and a wait on the store (which may last
// as long as another rank's model takes to train) ends when a rank's heartbeat stops for that long.
// BatchShard is the view the objective takes of one global batch split over the ranks.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "matvae/dist/collectives.h"
#include "matvae/dist/environment.h"
#include "matvae/util/error.h"

namespace c10d {
class Store;
class ProcessGroupGloo;
}  // namespace c10d

namespace matvae {

/// A rank of the job ended, failed or stopped answering; the message names it (rank() is -1 if
/// no one rank can be named).
class LostRankError : public Error {
 public:
  LostRankError(const std::string& message, int64_t rank) : Error(message), rank_(rank) {}
  int64_t rank() const { return rank_; }

 private:
  int64_t rank_;
};

/// What rank 0 failed with, as the other ranks of from_root() throw it: rank 0 reports it, so they
/// need not repeat it.
class EchoedFailure {
 public:
  virtual ~EchoedFailure() = default;
};
class EchoedUsageError : public UsageError, public EchoedFailure {
  using UsageError::UsageError;
};
class EchoedError : public Error, public EchoedFailure {
  using Error::Error;
};

class RankGroup : public Collectives {
 public:
  /// Joins the ranks of `env` (world > 1): rank 0 serves the store, every rank connects, starts its
  /// heartbeat and forms the Gloo group. Throws UsageError naming MASTER_PORT when rank 0 cannot
  /// listen on it, Error when rank 0's store cannot be reached, LostRankError when a rank does not
  /// join, each within `timeout`.
  RankGroup(const RankEnv& env, std::chrono::milliseconds timeout);
  ~RankGroup() override;
  RankGroup(const RankGroup&) = delete;
  RankGroup& operator=(const RankGroup&) = delete;

  int64_t rank() const override { return env_.rank; }
  int64_t world() const override { return env_.world; }
  int64_t local_world() const { return env_.local_world; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // --- tensor collectives (Gloo), each bounded by the timeout ---

  /// The tensors packed into one buffer for one Gloo all-reduce, and unpacked.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override;
  using Collectives::all_reduce_sum;
  torch::Tensor all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows) override;
  void barrier() override;
  /// A Gloo broadcast, for payloads too large for the store.
  std::string broadcast_bytes(const std::string& bytes) override;
  double collective_seconds() const override { return collective_seconds_; }

  // --- the store ---

  /// Every call of these takes the next key of one sequence, so every rank must make the same
  /// calls in the same order.
  /// The others throw rank 0's UsageError or Error as EchoedUsageError or EchoedError.
  void from_root(const std::function<void()>& work) override;
  std::string share_from_root(const std::string& value) override;
  /// A fresh name for this step of the sequence ("phase/3"): a prefix for keys of one's own.
  std::string next_scope(const std::string& what);

  /// The store's counter `key` after adding `value` (claims: the rank that gets 1 owns the key).
  int64_t add(const std::string& key, int64_t value);
  void set(const std::string& key, const std::string& value);
  /// `key`'s value if it is set now.
  std::optional<std::string> try_get(const std::string& key);
  void erase(const std::string& key);
  /// Waits for `key` and returns its value, however long that takes, as long as every rank is
  /// alive. Throws LostRankError when a rank reported a failure or its heartbeat stopped for the
  /// timeout; returns nothing when `stop` returns true (checked between polls).
  std::optional<std::string> wait_for(const std::string& key, const std::function<bool()>& stop = nullptr);

  /// Tells the others that this rank stopped with `message` (best effort, never throws): they
  /// name it and stop instead of waiting for it.
  void report_failure(const std::string& message) noexcept;
  /// What the heartbeat thread has seen while this rank works alone (training a model of the
  /// experiment, say): a rank that reported a failure or went silent for the timeout. Work that
  /// runs long between calls of the group watches lost() and stops; lost_rank() says which.
  bool lost() const { return lost_.load(); }
  std::optional<LostRankError> lost_rank() const;
  /// The last call of a rank that succeeded: rank 0 waits until every rank has made it, so that
  /// the store (its server) outlives every rank's last use of it.
  void finish();

 private:
  /// What one thread saw of every rank's heartbeat: its last value and when that value changed.
  struct Watch {
    std::vector<std::string> beat;
    std::vector<std::chrono::steady_clock::time_point> changed;
  };
  [[noreturn]] void lost(const std::string& during, const std::string& cause);
  /// A failure some rank reported, or the ranks whose heartbeat (as `watch` saw it, through
  /// `store`) has not moved for `quiet`.
  std::optional<LostRankError> find_lost(c10d::Store& store, Watch& watch, std::chrono::milliseconds quiet) const;
  void beat_loop();

  RankEnv env_;
  std::chrono::milliseconds timeout_;
  int64_t sequence_ = 0;
  double collective_seconds_ = 0;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Store> beat_store_;  // the heartbeat's own connection: never behind a wait
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::atomic<bool> beating_{true};
  std::thread beat_;
  Watch watch_;  // the main thread's
  std::atomic<bool> lost_{false};
  mutable std::mutex lost_mutex_;
  std::optional<LostRankError> lost_rank_;  // what the heartbeat thread found
};

/// How the rows of one global batch of `total` rows are split over the ranks: rank r takes rows
/// [offset, offset + rows), the first total % world ranks one more than the others. With no group
/// it is the whole batch on one process.
struct BatchShard {
  Collectives* group = nullptr;
  int64_t total = 0, offset = 0, rows = 0;
  std::vector<int64_t> sizes;  // rows of every rank

  static BatchShard of(Collectives* group, int64_t total);
  /// Rank `rank`'s part of `total` rows over `world` ranks (no group: for tests).
  static BatchShard split(int64_t total, int64_t world, int64_t rank);
  /// This rank's rows of a tensor that holds the whole batch.
  torch::Tensor slice(const torch::Tensor& whole) const { return group ? whole.narrow(0, offset, rows) : whole; }
  /// The whole batch's rows, this rank's own being `local` itself (so gradient flows to them only)
  /// and the others' copies without gradient: a function of the gathered rows has, on this rank,
  /// the gradient of the whole batch's value with respect to this rank's rows.
  torch::Tensor gather(const torch::Tensor& local) const;
  /// A mean over the batch's images from this rank's mean over its rows: in value the whole
  /// batch's mean (the same on every rank), in gradient this rank's share of it, so that the sum
  /// of the ranks' gradients is the gradient of the whole batch's mean.
  torch::Tensor batch_mean(const torch::Tensor& local_mean) const;
  /// A sum over the ranks' parts: in value the sum (the same on every rank), in gradient this
  /// rank's own part's.
  torch::Tensor rank_sum(const torch::Tensor& part) const;
};

}  // namespace matvae
