// Joining the ranks, their heartbeats, and the collectives of one training step; see rank_group.h.
#include "matvae/dist/rank_group.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

namespace matvae {
namespace {

using Ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A heartbeat every half second; a rank is silent when its heartbeat has not moved for kQuiet
// after a collective failed (a live rank's thread beats six times in that while), or for the whole
// timeout while another rank waits on the store.
constexpr Ms kBeatPeriod{500};
constexpr Ms kQuiet{3000};
// How often the heartbeat thread looks at the others' (a look reads two keys per rank).
constexpr Ms kLookPeriod{2000};

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string string_of(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

std::string beat_key(int64_t rank) { return fmt::format("matvae/beat/{}", rank); }
std::string failed_key(int64_t rank) { return fmt::format("matvae/failed/{}", rank); }
std::string finished_key(int64_t rank) { return fmt::format("matvae/finished/{}", rank); }

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// The network device Gloo binds: loopback for a job on one machine, GLOO_SOCKET_IFNAME's interface
/// when set (as in PyTorch), else the address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const RankEnv& env) {
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

RankGroup::RankGroup(const RankEnv& env, Ms timeout)
    : env_(env),
      timeout_(timeout),
      watch_{std::vector<std::string>(static_cast<size_t>(env.world)),
             std::vector<Clock::time_point>(static_cast<size_t>(env.world), Clock::now())} {
  TORCH_INTERNAL_ASSERT(env.world > 1, "a rank group needs at least two ranks");
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(env.port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = static_cast<std::size_t>(env.world);
  opts.waitWorkers = false;  // the Gloo rendezvous below waits for every rank
  opts.timeout = timeout;
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
    opts.isServer = false;
    beat_store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (env.rank == 0)
      throw UsageError(fmt::format("MASTER_PORT={}: rank 0 cannot serve its store on {}:{} ({}); choose a free port",
                                   env.port, env.master_addr, env.port, what));
    throw Error(fmt::format("rank {}: cannot reach rank 0's store at MASTER_ADDR={} MASTER_PORT={} within {} s ({})",
                            env.rank, env.master_addr, env.port, timeout.count() / 1000, what));
  }
  beat_ = std::thread(&RankGroup::beat_loop, this);
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(env));
    options->threads = 1;  // one step's collectives run one after another
    try {
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(env.rank),
                                                           static_cast<int>(env.world), options);
    } catch (const std::exception& e) {
      lost("joining the group", e.what());
    }
  } catch (...) {
    beating_ = false;
    beat_.join();
    throw;
  }
}

RankGroup::~RankGroup() {
  beating_ = false;
  if (beat_.joinable()) beat_.join();
}

void RankGroup::beat_loop() {
  Watch watch = watch_;
  int64_t n = 0;
  auto next_look = Clock::now() + kLookPeriod;
  while (beating_.load()) {
    try {
      beat_store_->set(beat_key(env_.rank), bytes_of(std::to_string(n++)));
    } catch (const std::exception&) {
      // The store's host is gone; find_lost below names rank 0.
    }
    if (Clock::now() >= next_look && !lost_.load()) {
      if (auto e = find_lost(*beat_store_, watch, timeout_)) {
        std::lock_guard<std::mutex> lock(lost_mutex_);
        lost_rank_ = std::move(e);
        lost_.store(true);
      }
      next_look = Clock::now() + kLookPeriod;
    }
    for (auto slept = Ms(0); slept < kBeatPeriod && beating_.load(); slept += Ms(50))
      std::this_thread::sleep_for(Ms(50));
  }
}

std::optional<LostRankError> RankGroup::lost_rank() const {
  std::lock_guard<std::mutex> lock(lost_mutex_);
  return lost_rank_;
}

// ================================================================================================
// Naming a lost rank
// ================================================================================================

std::optional<LostRankError> RankGroup::find_lost(c10d::Store& store, Watch& watch, Ms quiet) const {
  try {
    for (int64_t r = 0; r < env_.world; ++r) {
      if (r == env_.rank) continue;
      if (store.check({failed_key(r)}))
        return LostRankError(fmt::format("rank {} of {} stopped: {}", r, env_.world, string_of(store.get(failed_key(r)))), r);
    }
    const auto now = Clock::now();
    std::vector<int64_t> silent;
    for (int64_t r = 0; r < env_.world; ++r) {
      if (r == env_.rank) continue;
      const std::string beat = store.check({beat_key(r)}) ? string_of(store.get(beat_key(r))) : "";
      if (beat != watch.beat[r]) {
        watch.beat[r] = beat;
        watch.changed[r] = now;
      } else if (now - watch.changed[r] >= quiet) {
        silent.push_back(r);
      }
    }
    if (silent.empty()) return std::nullopt;
    return LostRankError(fmt::format("rank {} of {} was lost: it ended or stopped answering for {} s", fmt::join(silent, ", "),
                                     env_.world, std::chrono::duration_cast<std::chrono::seconds>(quiet).count()),
                         silent.front());
  } catch (const std::exception& e) {
    return LostRankError(fmt::format("rank 0 of {} was lost: its store at {}:{} no longer answers ({})", env_.world,
                                     env_.master_addr, env_.port, first_line(e.what())),
                         0);
  }
}

void RankGroup::lost(const std::string& during, const std::string& cause) {
  // A collective failed: a peer closed its connections (it ended) or the timeout passed. Watch the
  // heartbeats for long enough to tell a silent rank from a live one, and name it.
  const auto deadline = Clock::now() + std::min<Ms>(timeout_, kQuiet) + Ms(1000);
  while (Clock::now() < deadline) {
    if (auto e = find_lost(*store_, watch_, std::min<Ms>(timeout_, kQuiet)))
      throw LostRankError(fmt::format("{} while {} ({})", e->what(), during, first_line(cause)), e->rank());
    std::this_thread::sleep_for(Ms(100));
  }
  throw LostRankError(fmt::format("rank {}: a collective failed while {} ({})", env_.rank, during, first_line(cause)), -1);
}

// ================================================================================================
// Tensor collectives
// ================================================================================================

void RankGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.reshape({-1}));
  std::vector<at::Tensor> flat = {tensors.size() == 1 ? flat_parts[0] : torch::cat(flat_parts)};
  {
    const CollectiveTimer watch{collective_seconds_};
    try {
      group_->allreduce(flat)->wait();
    } catch (const std::exception& e) {
      lost("summing gradients", e.what());
    }
  }
  if (tensors.size() == 1 && flat[0].data_ptr() == tensors[0].data_ptr()) return;  // reduced in place
  int64_t at = 0;
  for (auto& t : tensors) {
    t.copy_(flat[0].narrow(0, at, t.numel()).view_as(t));
    at += t.numel();
  }
}

torch::Tensor RankGroup::all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows) {
  TORCH_INTERNAL_ASSERT(static_cast<int64_t>(rows.size()) == env_.world, "expected one row count per rank");
  // Gloo gathers equal shapes: pad every rank's rows to the largest count, then cut the padding.
  const int64_t most = *std::max_element(rows.begin(), rows.end());
  auto shape = local.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local.detach());
  std::vector<std::vector<at::Tensor>> out(1);
  for (int64_t r = 0; r < env_.world; ++r) out[0].push_back(torch::empty(shape, local.options()));
  std::vector<at::Tensor> in = {padded};
  const CollectiveTimer watch{collective_seconds_};
  try {
    group_->allgather(out, in)->wait();
  } catch (const std::exception& e) {
    lost("gathering codes", e.what());
  }
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < env_.world; ++r) parts.push_back(out[0][r].narrow(0, 0, rows[r]));
  return torch::cat(parts, 0);
}

void RankGroup::barrier() {
  const CollectiveTimer watch{collective_seconds_};
  try {
    group_->barrier()->wait();
  } catch (const std::exception& e) {
    lost("waiting for the others", e.what());
  }
}

std::string RankGroup::broadcast_bytes(const std::string& bytes) {
  try {
    std::vector<at::Tensor> size = {torch::full({1}, static_cast<int64_t>(is_root() ? bytes.size() : 0), torch::kInt64)};
    group_->broadcast(size)->wait();
    auto data = torch::empty({size[0].item<int64_t>()}, torch::kUInt8);
    if (is_root()) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    std::vector<at::Tensor> t = {data};
    group_->broadcast(t)->wait();
    return std::string(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), static_cast<size_t>(data.numel()));
  } catch (const std::exception& e) {
    lost("passing rank 0's state", e.what());
  }
}

// ================================================================================================
// The store
// ================================================================================================

std::string RankGroup::next_scope(const std::string& what) { return fmt::format("matvae/{}/{}", what, sequence_++); }

int64_t RankGroup::add(const std::string& key, int64_t value) {
  try {
    return store_->add(key, value);
  } catch (const std::exception& e) {
    lost("claiming " + key, e.what());
  }
}

void RankGroup::set(const std::string& key, const std::string& value) {
  try {
    store_->set(key, bytes_of(value));
  } catch (const std::exception& e) {
    lost("writing " + key, e.what());
  }
}

std::optional<std::string> RankGroup::try_get(const std::string& key) {
  try {
    // check first: get would block until the key appears, holding the store's connection.
    if (!store_->check({key})) return std::nullopt;
    return string_of(store_->get(key));
  } catch (const std::exception& e) {
    lost("reading " + key, e.what());
  }
}

void RankGroup::erase(const std::string& key) {
  try {
    store_->deleteKey(key);
  } catch (const std::exception& e) {
    lost("removing " + key, e.what());
  }
}

std::optional<std::string> RankGroup::wait_for(const std::string& key, const std::function<bool()>& stop) {
  auto next_check = Clock::now();
  for (Ms pause(5);; pause = std::min(pause * 2, Ms(200))) {
    if (auto v = try_get(key)) return v;
    if (stop && stop()) return std::nullopt;
    if (Clock::now() >= next_check) {
      if (auto e = find_lost(*store_, watch_, timeout_)) throw LostRankError(fmt::format("{} (waiting for {})", e->what(), key), e->rank());
      next_check = Clock::now() + Ms(1000);
    }
    std::this_thread::sleep_for(pause);
  }
}

void RankGroup::report_failure(const std::string& message) noexcept {
  try {
    store_->set(failed_key(env_.rank), bytes_of(first_line(message)));
  } catch (...) {
  }
}

void RankGroup::finish() {
  set(finished_key(env_.rank), "1");
  if (!is_root()) return;
  for (int64_t r = 1; r < env_.world; ++r) wait_for(finished_key(r));
}

void RankGroup::from_root(const std::function<void()>& work) {
  const std::string key = next_scope("outcome");
  if (is_root()) {
    try {
      work();
    } catch (const UsageError& e) {
      set(key, std::string("u") + e.what());
      throw;
    } catch (const std::exception& e) {
      set(key, std::string("e") + e.what());
      throw;
    }
    set(key, "ok");
    return;
  }
  const std::string outcome = *wait_for(key);
  if (outcome == "ok") return;
  const std::string message = "rank 0: " + outcome.substr(1);
  if (outcome[0] == 'u') throw EchoedUsageError(message);
  throw EchoedError(message);
}

std::string RankGroup::share_from_root(const std::string& value) {
  const std::string key = next_scope("value");
  if (is_root()) {
    set(key, value);
    return value;
  }
  return *wait_for(key);
}

// ================================================================================================
// BatchShard
// ================================================================================================

BatchShard BatchShard::of(Collectives* group, int64_t total) {
  BatchShard s = split(total, group ? group->world() : 1, group ? group->rank() : 0);
  s.group = group;
  return s;
}

BatchShard BatchShard::split(int64_t total, int64_t world, int64_t rank) {
  BatchShard s;
  s.total = total;
  for (int64_t r = 0; r < world; ++r) s.sizes.push_back(total / world + (r < total % world ? 1 : 0));
  for (int64_t r = 0; r < rank; ++r) s.offset += s.sizes[r];
  s.rows = s.sizes[rank];
  return s;
}

torch::Tensor BatchShard::gather(const torch::Tensor& local) const {
  if (!group) return local;
  const auto all = group->all_gather_rows(local, sizes);
  std::vector<torch::Tensor> parts;
  if (offset > 0) parts.push_back(all.narrow(0, 0, offset));
  parts.push_back(local);
  if (offset + rows < total) parts.push_back(all.narrow(0, offset + rows, total - offset - rows));
  return torch::cat(parts, 0);
}

torch::Tensor BatchShard::batch_mean(const torch::Tensor& local_mean) const {
  if (!group) return local_mean;
  return rank_sum(local_mean * (static_cast<double>(rows) / static_cast<double>(total)));
}

torch::Tensor BatchShard::rank_sum(const torch::Tensor& part) const {
  if (!group) return part;
  auto whole = part.detach().contiguous().clone();
  group->all_reduce_sum(whole);
  // In value exactly the sum (part - part.detach() is 0), so every rank holds the same number.
  return whole + (part - part.detach());
}

}  // namespace matvae
