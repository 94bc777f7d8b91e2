// Joining the ranks and the collectives of one training step; see rank_group.h.
#include "matvae/dist/rank_group.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <thread>

namespace matvae {
namespace {

using Ms = std::chrono::milliseconds;

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string string_of(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

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

RankGroup::RankGroup(const RankEnv& env, Ms timeout) : env_(env), timeout_(timeout) {
  TORCH_CHECK(env.world > 1, "a rank group needs at least two ranks");
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(env.port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = static_cast<std::size_t>(env.world);
  opts.waitWorkers = false;  // Gloo's own rendezvous below waits for every rank
  opts.timeout = timeout;
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (env.rank == 0)
      throw UsageError(fmt::format("MASTER_PORT={}: rank 0 cannot serve its store on {}:{} ({}); choose a free port",
                                   env.port, env.master_addr, env.port, what));
    throw Error(fmt::format("rank {}: cannot reach rank 0's store at MASTER_ADDR={} MASTER_PORT={} within {} s ({})",
                            env.rank, env.master_addr, env.port, timeout.count() / 1000, what));
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(env));
    options->threads = 1;  // one step's collectives run one after another
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(env.rank),
                                                         static_cast<int>(env.world), options);
  } catch (const std::exception& e) {
    lost("forming the group", e);
  }
}

RankGroup::~RankGroup() = default;

std::string RankGroup::next_key(const char* what) { return fmt::format("matvae/{}/{}", what, sequence_++); }

void RankGroup::lost(const std::string& during, const std::exception& e) {
  // Say in the store that this rank is still here, give the others a moment to say the same, and
  // name those that did not: they ended or stopped answering. A store that cannot be reached at
  // all means its host, rank 0, is gone.
  std::vector<int64_t> silent;
  try {
    store_->set(fmt::format("matvae/alive/{}", env_.rank), bytes_of("1"));
    const auto deadline = std::chrono::steady_clock::now() + std::min<Ms>(timeout_, Ms(5000));
    for (int64_t r = 0; r < env_.world; ++r) {
      if (r == env_.rank) continue;
      const std::string key = fmt::format("matvae/alive/{}", r);
      while (!store_->check({key}) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(Ms(50));
      if (!store_->check({key})) silent.push_back(r);
    }
  } catch (const std::exception&) {
    silent = {0};
  }
  const std::string cause = first_line(e.what());
  if (silent.empty())
    throw Error(fmt::format("rank {}: a collective failed while {} ({})", env_.rank, during, cause));
  throw LostRankError(fmt::format("rank {} of {} was lost while {}: it ended or stopped answering within {} s ({})",
                                  fmt::join(silent, ", "), env_.world, during, timeout_.count() / 1000, cause),
                      silent.front());
}

void RankGroup::all_reduce_sum(torch::Tensor& flat) {
  try {
    std::vector<at::Tensor> t = {flat};
    group_->allreduce(t)->wait();
  } catch (const std::exception& e) {
    lost("summing gradients", e);
  }
}

void RankGroup::broadcast(torch::Tensor& flat) {
  try {
    std::vector<at::Tensor> t = {flat};
    group_->broadcast(t)->wait();
  } catch (const std::exception& e) {
    lost("passing rank 0's values", e);
  }
}

torch::Tensor RankGroup::all_gather_rows(const torch::Tensor& local, const std::vector<int64_t>& rows) {
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == env_.world, "expected one row count per rank");
  // Gloo gathers equal shapes: pad every rank's rows to the largest count, then cut the padding.
  const int64_t most = *std::max_element(rows.begin(), rows.end());
  auto shape = local.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local.detach());
  std::vector<std::vector<at::Tensor>> out(1);
  for (int64_t r = 0; r < env_.world; ++r) out[0].push_back(torch::empty(shape, local.options()));
  std::vector<at::Tensor> in = {padded};
  try {
    group_->allgather(out, in)->wait();
  } catch (const std::exception& e) {
    lost("gathering codes", e);
  }
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < env_.world; ++r) parts.push_back(out[0][r].narrow(0, 0, rows[r]));
  return torch::cat(parts, 0);
}

void RankGroup::barrier(const std::string& name) {
  try {
    group_->barrier()->wait();
  } catch (const std::exception& e) {
    lost("waiting at " + name, e);
  }
}

int64_t RankGroup::add(const std::string& key, int64_t value) {
  try {
    return store_->add(key, value);
  } catch (const std::exception& e) {
    lost("claiming " + key, e);
  }
}

void RankGroup::set(const std::string& key, const std::string& value) {
  try {
    store_->set(key, bytes_of(value));
  } catch (const std::exception& e) {
    lost("writing " + key, e);
  }
}

std::string RankGroup::get(const std::string& key) {
  try {
    return string_of(store_->get(key));
  } catch (const std::exception& e) {
    lost("reading " + key, e);
  }
}

void RankGroup::from_root(const std::function<void()>& work) {
  const std::string key = next_key("outcome");
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
  const std::string outcome = get(key);
  if (outcome == "ok") return;
  const std::string message = "rank 0: " + outcome.substr(1);
  if (outcome[0] == 'u') throw UsageError(message);
  throw Error(message);
}

std::string RankGroup::share_from_root(const std::string& value) {
  const std::string key = next_key("value");
  if (is_root()) {
    set(key, value);
    return value;
  }
  return get(key);
}

// ================================================================================================
// BatchShard
// ================================================================================================

BatchShard BatchShard::of(RankGroup* group, int64_t total) {
  BatchShard s;
  s.group = group;
  s.total = total;
  const int64_t world = group ? group->world() : 1, rank = group ? group->rank() : 0;
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

torch::Tensor BatchShard::sum(const torch::Tensor& local) const {
  if (!group) return local.detach();
  auto flat = local.detach().contiguous().clone();
  group->all_reduce_sum(flat);
  return flat;
}

}  // namespace matvae
