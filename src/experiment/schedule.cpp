// Training and evaluating the planned tasks on the work pool; see schedule.h.
#include "matvae/experiment/schedule.h"

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "matvae/dist/rank_group.h"
#include "matvae/eval/code_metrics.h"
#include "matvae/experiment/cache.h"
#include "matvae/experiment/file_bundle.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/trainer.h"
#include "matvae/util/threads.h"
#include "matvae/util/work_pool.h"

namespace matvae {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The state one run of the schedule shares between its workers.
struct Shared {
  const ScheduleOptions& options;
  std::atomic<bool> halt{false};  // raised by Ctrl-C or by a failing task: every task saves and returns
  bool stopped() const { return halt.load() || (options.stop && options.stop->load()); }
  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }
};

/// Trains the job's model unless its run folder already holds a finished one; resumes a partial one.
/// A job that grows out of another (`source`) has that one trained first; a longer run of the
/// source's settings starts from a copy of its run folder. Returns false if interrupted.
bool ensure_trained(const ModelJob& job, Shared& shared) {
  const RunFolder folder(job.dir);
  if (folder.is_finished()) return true;
  if (job.source && !ensure_trained(*job.source, shared)) return false;
  std::error_code ec;
  if (job.extends_source && !folder.has_config()) {
    fs::remove_all(job.dir, ec);  // a copy that a kill cut short
    shared.log(fmt::format("{}: extending {} to {} epochs as {}", job.dataset, job.source->dir.filename().string(),
                           job.config.epochs, job.dir.filename().string()));
    RunFolder(job.source->dir).copy_resumable(job.dir);
  }
  TrainHooks hooks;
  hooks.stop = &shared.halt;
  TrainResult r;
  if (folder.has_state()) {
    shared.log(fmt::format("{}: resuming {}", job.dataset, job.dir.filename().string()));
    // With the job's epochs: a copy of a shorter run is extended to them.
    r = resume(job.dir, hooks, job.config.threads, job.config.epochs);
  } else {
    if (fs::exists(job.dir, ec)) fs::remove_all(job.dir, ec);  // stopped before its first checkpoint
    shared.log(fmt::format("{}: training {}", job.dataset, job.dir.filename().string()));
    r = train(job.config, job.dir, hooks);
  }
  return !r.interrupted;
}

/// The task's numbers at `dims` (those its cache lacks), from its model or the pixels; `share` holds
/// what the model's earlier evaluations computed from its codes.
json measure(const Task& t, const std::vector<int64_t>& dims, const Shared& shared, CodeShare& share) {
  const EvalStop stop = [&shared] { return shared.stopped(); };
  const auto start = std::chrono::steady_clock::now();
  json fresh;
  if (t.kind == EvalKind::kPixelPca) {
    shared.log(fmt::format("{}: evaluating pca", t.dataset));
    fresh = evaluate_pixel_pca(*t.data, dims, t.seed, stop);
    shared.log(fmt::format("{}: evaluated pca at {} prefix size(s) in {:.1f} s", t.dataset, fresh.size(),
                           seconds_since(start)));
    return fresh;
  }
  LoadedRun run = RunFolder(t.job.dir).load();
  const std::string name = t.job.dir.filename().string();
  shared.log(fmt::format("{}: evaluating {} ({})", t.dataset, name, t.cache.filename().string()));
  switch (t.kind) {
    case EvalKind::kPrefixes:
    case EvalKind::kTruncated:
      fresh = evaluate_prefixes(run.model, run.config, *t.data, dims, t.kind == EvalKind::kTruncated, t.seed, stop,
                                &share);
      break;
    case EvalKind::kCodePca:
      fresh = evaluate_code_pca(run.model, run.config, *t.data, dims, t.seed, stop);
      break;
    case EvalKind::kAdaptive:
      fresh[std::to_string(run.config.latent)] = evaluate_adaptive(run.model, run.config, *t.data, t.seed, &share);
      break;
    case EvalKind::kPixelPca:
      break;
  }
  shared.log(fmt::format("{}: evaluated {} at {} prefix size(s) in {:.1f} s", t.dataset, name, fresh.size(),
                         seconds_since(start)));
  return fresh;
}

/// What the evaluations of one model and seed share (eval/code_metrics.h), kept while a worker runs
/// a group of tasks: the per-prefix, truncated and adaptive evaluations of a model meet the same
/// prefixes of the same codes.
class CodeShares {
 public:
  CodeShare& of(const Task& t) { return shares_[t.job.dir.string() + "#" + std::to_string(t.seed)]; }

 private:
  std::map<std::string, CodeShare> shares_;
};

/// Trains the task's model if it has one, then evaluates it through the cache; null if interrupted.
json run_task(Task& t, Shared& shared, CodeShares& shares) {
  const bool has_model = t.kind != EvalKind::kPixelPca;
  if (has_model && (shared.stopped() || !ensure_trained(t.job, shared))) return json();
  return cached_eval(
      t.cache, t.dims, [&](const std::vector<int64_t>& missing) { return measure(t, missing, shared, shares.of(t)); },
      &t.evaluated_by);
}

/// The tasks grouped by model (a model that grows out of another with that one; pixel tasks by cache
/// file), so that each model trains once, on one worker; longest first: Matryoshka models, then
/// models with several evaluations, then by latent size, so that no worker is left alone with a
/// long one at the end.
std::vector<std::vector<size_t>> groups_by_cost(const std::vector<Task>& tasks) {
  std::vector<std::vector<size_t>> groups;
  std::map<std::string, size_t> group_of;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    const ModelJob* root = &t.job;  // the first model of the chain it grows out of
    while (root->source) root = root->source.get();
    const fs::path& key = t.job.dir.empty() ? t.cache : root->dir;
    const auto [it, fresh] = group_of.emplace(key.string(), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  const auto cost = [&](const std::vector<size_t>& g) {
    const Task& t = tasks[g.front()];
    const bool mrl = !t.job.dir.empty() && is_mrl(t.job.config.model);
    const int64_t size = t.job.dir.empty() ? t.dims.back() : t.job.config.latent;
    return std::make_tuple(mrl, g.size(), size);
  };
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const std::vector<size_t>& a, const std::vector<size_t>& b) { return cost(a) > cost(b); });
  return groups;
}

// ================================================================================================
// Over ranks: claims through the store, results to every rank, files to rank 0
// ================================================================================================

/// Whether every task of the group is done in this rank's folder: its model finished and its
/// evaluation cached at every m.
bool group_done_here(const std::vector<Task>& tasks, const std::vector<size_t>& group) {
  for (size_t i : group) {
    const Task& t = tasks[i];
    if (!t.job.dir.empty() && !RunFolder(t.job.dir).is_finished()) return false;
    if (!cache_complete(t.cache, t.dims)) return false;
  }
  return true;
}

/// What a group's work left on disk: its models' run folders (those they grow out of too) and its
/// evaluations' cache files.
std::vector<fs::path> group_files(const std::vector<Task>& tasks, const std::vector<size_t>& group) {
  std::vector<fs::path> paths;
  for (size_t i : group) {
    for (const ModelJob* j = &tasks[i].job; j && !j->dir.empty(); j = j->source.get()) paths.push_back(j->dir);
    paths.push_back(tasks[i].cache);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

json group_results(const std::vector<Task>& tasks, const std::vector<size_t>& group, int64_t rank) {
  json out;
  out["rank"] = rank;
  for (size_t i : group) out["tasks"].push_back({{"index", i}, {"result", tasks[i].result}, {"evaluated_by", tasks[i].evaluated_by}});
  return out;
}

bool run_tasks_over_ranks(std::vector<Task>& tasks, const std::vector<std::vector<size_t>>& groups, Shared& shared) {
  const ScheduleOptions& o = shared.options;
  RankGroup& ranks = *o.ranks;
  const std::string scope = ranks.next_scope("phase");
  const auto key = [&](const std::string& what, size_t g) { return fmt::format("{}/{}/{}", scope, what, g); };
  // Rank 0 takes the groups its folder holds done already (another rank might not see their files
  // and would train them again); the others are claimed in cost order by whichever rank is free.
  std::string done_at_root(groups.size(), '0');
  if (ranks.is_root())
    for (size_t g = 0; g < groups.size(); ++g) done_at_root[g] = group_done_here(tasks, groups[g]) ? '1' : '0';
  done_at_root = ranks.share_from_root(done_at_root);
  std::vector<size_t> mine, open;
  for (size_t g = 0; g < groups.size(); ++g) (done_at_root[g] == '1' ? mine : open).push_back(g);
  if (!ranks.is_root()) mine.clear();
  size_t next_mine = 0;
  std::mutex store_mutex;  // the rank group is used by one thread at a time
  const auto claim = [&]() -> std::optional<size_t> {
    if (next_mine < mine.size()) return mine[next_mine++];
    std::lock_guard<std::mutex> lock(store_mutex);
    const int64_t k = ranks.add(scope + "/claimed", 1) - 1;
    return k < static_cast<int64_t>(open.size()) ? std::optional<size_t>(open[static_cast<size_t>(k)]) : std::nullopt;
  };
  const auto run_group = [&](size_t g) {
    CodeShares shares;
    for (size_t i : groups[g]) {
      tasks[i].result = run_task(tasks[i], shared, shares);
      if (tasks[i].result.is_null()) return;
    }
    // The files first: when rank 0 sees the results, the files are there to be written.
    const std::string files = o.send_files ? pack_files(o.root, group_files(tasks, groups[g])) : std::string();
    std::lock_guard<std::mutex> lock(store_mutex);
    if (o.send_files) ranks.set(key("files", g), files);
    ranks.set(key("results", g), group_results(tasks, groups[g], ranks.rank()).dump());
  };
  WorkPoolOptions pool;
  pool.workers = o.jobs;
  pool.setup = [&o] { set_threads(o.job_threads); };
  pool.stop = o.stop;
  pool.halt_when = [&ranks] { return ranks.lost(); };  // a rank lost while this one trains: stop, name it
  run_claimed_work(claim, run_group, shared.halt, pool);
  if (const auto e = ranks.lost_rank()) throw *e;
  if (shared.stopped()) {
    ranks.set(fmt::format("{}/stopped/{}", scope, ranks.rank()), "1");
    return false;
  }
  // Every group's results, from whichever rank ran it; rank 0 also writes the files sent to it.
  const auto another_stopped = [&] {
    if (shared.stopped()) return true;
    for (int64_t r = 0; r < ranks.world(); ++r)
      if (ranks.try_get(fmt::format("{}/stopped/{}", scope, r))) return true;
    return false;
  };
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::optional<std::string> text = ranks.wait_for(key("results", g), another_stopped);
    if (!text) return false;
    const json done = json::parse(*text);
    if (done.at("rank").get<int64_t>() == ranks.rank()) continue;
    for (const auto& t : done.at("tasks")) {
      Task& task = tasks.at(t.at("index").get<size_t>());
      task.result = t.at("result");
      task.evaluated_by = t.at("evaluated_by").get<std::set<std::string>>();
    }
    if (!ranks.is_root()) continue;
    if (const auto files = ranks.try_get(key("files", g))) {
      unpack_files(o.root, *files);
      ranks.erase(key("files", g));  // the store is rank 0's memory
    }
  }
  return true;
}

}  // namespace

bool run_tasks(std::vector<Task>& tasks, const ScheduleOptions& options) {
  Shared shared{options};
  const auto groups = groups_by_cost(tasks);
  if (options.ranks) return run_tasks_over_ranks(tasks, groups, shared);
  if (shared.stopped()) return false;
  WorkPoolOptions pool;
  pool.workers = options.jobs;
  pool.setup = [&options] { set_threads(options.job_threads); };
  pool.stop = options.stop;
  run_work_pool(
      groups.size(),
      [&](size_t g) {
        CodeShares shares;
        for (size_t i : groups[g]) {
          tasks[i].result = run_task(tasks[i], shared, shares);
          if (tasks[i].result.is_null()) return;
        }
      },
      shared.halt, pool);
  for (const Task& t : tasks)
    if (t.result.is_null()) return false;
  return true;
}

}  // namespace matvae
