// Ranks as threads, their collectives in shared memory; see thread_team.h.
#include "matvae/dist/thread_team.h"

#include <fmt/format.h>

#include <thread>

#include "matvae/util/error.h"
#include "matvae/util/threads.h"

namespace matvae {
namespace {

/// Turns of the spin before a rank sleeps at a barrier: about 50 microseconds.
constexpr int kSpins = 2000;

inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// Thrown in a rank that stops because another failed; run() rethrows the other's failure instead.
struct TeamStopped : std::exception {
  const char* what() const noexcept override { return "stopped: another rank of the team failed"; }
};

/// Sums elements [begin, end) of the ranks' equally shaped tensors in rank order and writes the sum
/// into every rank's: the same order whichever thread does it, so every run gives the same bits.
template <typename T>
void sum_range(const std::vector<torch::Tensor*>& parts, int64_t begin, int64_t end) {
  const size_t ranks = parts.size();
  std::vector<T*> p(ranks);
  for (size_t r = 0; r < ranks; ++r) p[r] = parts[r]->data_ptr<T>();
  if (ranks == 2) {  // the common case, one pass the compiler vectorises
    T* __restrict a = p[0];
    T* __restrict b = p[1];
    for (int64_t i = begin; i < end; ++i) a[i] = b[i] = a[i] + b[i];
    return;
  }
  for (int64_t i = begin; i < end; ++i) {
    T s = p[0][i];
    for (size_t r = 1; r < ranks; ++r) s += p[r][i];
    for (size_t r = 0; r < ranks; ++r) p[r][i] = s;
  }
}

}  // namespace

// ================================================================================================
// Member: one rank's view of the team
// ================================================================================================

class ThreadTeam::Member : public Collectives {
 public:
  Member(ThreadTeam& team, int64_t rank) : team_(team), rank_(rank) {}

  int64_t rank() const override { return rank_; }
  int64_t world() const override { return team_.world_; }
  double collective_seconds() const override { return seconds_; }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    const CollectiveTimer timed{seconds_};
    for (const auto& t : tensors)
      TORCH_CHECK(t.is_contiguous() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64),
                  "ThreadTeam::all_reduce_sum: contiguous float32 or float64 tensors only");
    team_.tensors_[rank_] = &tensors;
    team_.arrive_and_wait();
    // Every rank sums its share of the elements of all tensors, taken as one sequence.
    const int64_t world = team_.world_;
    for (int64_t r = 0; r < world; ++r) {
      const auto& theirs = *team_.tensors_[r];
      TORCH_CHECK(theirs.size() == tensors.size(), "ThreadTeam::all_reduce_sum: rank ", r, " passed ", theirs.size(),
                  " tensors, rank ", rank_, " ", tensors.size());
      for (size_t j = 0; j < tensors.size(); ++j)
        TORCH_CHECK(theirs[j].sizes() == tensors[j].sizes() && theirs[j].scalar_type() == tensors[j].scalar_type(),
                    "ThreadTeam::all_reduce_sum: tensor ", j, " differs between ranks ", r, " and ", rank_);
    }
    int64_t total = 0;
    for (const auto& t : tensors) total += t.numel();
    const int64_t begin = total * rank_ / world, end = total * (rank_ + 1) / world;
    int64_t offset = 0;
    std::vector<torch::Tensor*> parts(static_cast<size_t>(world));
    for (size_t j = 0; j < tensors.size() && offset < end; ++j) {
      const int64_t n = tensors[j].numel();
      const int64_t from = std::max(begin, offset) - offset, to = std::min(end, offset + n) - offset;
      if (from < to) {
        for (int64_t r = 0; r < world; ++r) parts[r] = &(*team_.tensors_[r])[j];
        if (tensors[j].scalar_type() == torch::kFloat32)
          sum_range<float>(parts, from, to);
        else
          sum_range<double>(parts, from, to);
      }
      offset += n;
    }
    team_.arrive_and_wait();  // every share summed before anyone reads or changes its tensors
  }

  torch::Tensor all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows) override {
    const CollectiveTimer timed{seconds_};
    TORCH_CHECK(static_cast<int64_t>(rows.size()) == team_.world_, "expected one row count per rank");
    const auto mine = local.detach().contiguous();
    team_.rows_[rank_] = &mine;
    team_.arrive_and_wait();
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < team_.world_; ++r) {
      TORCH_CHECK(team_.rows_[r]->size(0) == rows[r], "ThreadTeam::all_gather_rows: rank ", r, " gave ",
                  team_.rows_[r]->size(0), " rows, expected ", rows[r]);
      parts.push_back(*team_.rows_[r]);
    }
    auto all = torch::cat(parts, 0);
    team_.arrive_and_wait();  // the others' rows are read before they go out of scope
    return all;
  }

  void barrier() override {
    const CollectiveTimer timed{seconds_};
    team_.arrive_and_wait();
  }

  std::string broadcast_bytes(const std::string& bytes) override {
    const CollectiveTimer timed{seconds_};
    return share(bytes);
  }

  std::string share_from_root(const std::string& value) override { return share(value); }

  void from_root(const std::function<void()>& work) override {
    if (is_root()) {
      try {
        work();
      } catch (...) {
        team_.root_failure_ = std::current_exception();
      }
    }
    team_.arrive_and_wait();
    if (team_.root_failure_) {
      if (is_root()) std::rethrow_exception(team_.root_failure_);
      throw TeamStopped();  // rank 0 reports it
    }
  }

 private:
  std::string share(const std::string& value) {
    if (is_root()) team_.root_bytes_ = &value;
    team_.arrive_and_wait();
    std::string out = is_root() ? value : *team_.root_bytes_;
    team_.arrive_and_wait();  // rank 0's string outlives every copy
    return out;
  }

  ThreadTeam& team_;
  const int64_t rank_;
  double seconds_ = 0;
};

// ================================================================================================
// The team: its barrier, its failures, its threads
// ================================================================================================

ThreadTeam::ThreadTeam(int64_t world) : world_(world) {
  if (world < 1) throw Error(fmt::format("a thread team needs at least one rank, not {}", world));
}

void ThreadTeam::arrive_and_wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (broken_) throw TeamStopped();
  const uint64_t generation = generation_.load();
  if (++arrived_ == world_) {
    arrived_ = 0;
    ++generation_;
    arrived_cv_.notify_all();
    return;
  }
  // The others are usually a few microseconds behind: a short spin spares the sleep and the wake-up
  // (tens of microseconds on a VM, several times per step) before waiting on the condition.
  lock.unlock();
  for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == generation; ++i) spin_pause();
  lock.lock();
  // A rank that has returned makes no more collectives: waiting for it would be waiting forever.
  arrived_cv_.wait(lock, [&] { return generation_ != generation || broken_ || returned_ > 0; });
  if (generation_ != generation) return;
  if (broken_) throw TeamStopped();
  throw Error(fmt::format("a rank of a team of {} waits in a collective that another, which has returned, never made",
                          world_));
}

void ThreadTeam::fail(int64_t rank, std::exception_ptr error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error && !failures_[rank]) failures_[rank] = error;
  broken_ = true;
  arrived_cv_.notify_all();
}

void ThreadTeam::run(const std::function<void(Collectives&)>& rank) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    arrived_ = 0;
    returned_ = 0;
    broken_ = false;
    failures_.assign(static_cast<size_t>(world_), nullptr);
    root_failure_ = nullptr;  // set only by a failure, which ends the team
    tensors_.assign(static_cast<size_t>(world_), nullptr);
    rows_.assign(static_cast<size_t>(world_), nullptr);
  }
  std::vector<Member> members;
  members.reserve(static_cast<size_t>(world_));
  for (int64_t r = 0; r < world_; ++r) members.emplace_back(*this, r);
  const auto body = [&](int64_t r) {
    try {
      set_threads(1);
      rank(members[r]);
      std::lock_guard<std::mutex> lock(mutex_);
      ++returned_;
      arrived_cv_.notify_all();
    } catch (const TeamStopped&) {
      fail(r, nullptr);
    } catch (...) {
      fail(r, std::current_exception());
    }
  };
  const int64_t caller_threads = torch::get_num_threads();
  std::vector<std::thread> threads;
  for (int64_t r = 1; r < world_; ++r) {
    try {
      threads.emplace_back(body, r);
    } catch (const std::exception& e) {  // no thread to be had: the ranks started stop at their first collective
      fail(0, std::make_exception_ptr(Error(fmt::format("cannot start rank {} of {} as a thread: {}", r, world_, e.what()))));
      break;
    }
  }
  if (threads.size() + 1 == static_cast<size_t>(world_)) body(0);
  for (auto& t : threads) t.join();
  set_threads(caller_threads);
  for (const auto& failure : failures_)
    if (failure) std::rethrow_exception(failure);
}

}  // namespace matvae
