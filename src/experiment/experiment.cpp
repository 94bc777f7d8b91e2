// The experiment driver, stage by stage: validate the options, plan each data set (its attempts
// first, when asked, which choose its Matryoshka variant), run every task, then write results.json,
// the figures and the report. Each stage lives in a file of its own (experiment.h lists them).
#include "matvae/experiment/experiment.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "matvae/dist/rank_group.h"
#include "matvae/experiment/cache.h"
#include "matvae/experiment/figures.h"
#include "matvae/experiment/plan.h"
#include "matvae/experiment/results.h"
#include "matvae/experiment/schedule.h"
#include "matvae/experiment/tuning.h"
#include "matvae/models/nesting.h"
#include "matvae/report/report.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"
#include "matvae/util/threads.h"

namespace matvae {
namespace fs = std::filesystem;

namespace {

/// The options with the profile's defaults filled in, checked. Throws UsageError naming the flag.
ExperimentOptions validated(const ExperimentOptions& options, ExperimentProfile& profile) {
  if (options.epochs < 0 || options.epochs > 1000000)
    throw UsageError(fmt::format("--epochs: {} is outside 0..1000000 (0 = the profile's)", options.epochs));
  if (options.epochs > 0) profile.epochs = options.epochs;
  if (options.eval_train_limit < -1)
    throw UsageError(fmt::format("--eval-train-limit: {} is negative (0 = all training codes)", options.eval_train_limit));
  if (options.eval_train_limit >= 0) profile.eval_train_limit = options.eval_train_limit;
  if (!options.lr_schedule.empty()) {
    try {
      profile.lr_schedule = parse_lr_schedule(options.lr_schedule);
    } catch (const UsageError&) {
      throw UsageError(fmt::format("--lr-schedule: '{}' is not constant or cosine", options.lr_schedule));
    }
  }
  if (options.jobs < 0 || options.jobs > 1024)
    throw UsageError(fmt::format("--jobs: {} is outside 0..1024 (0 = one per thread)", options.jobs));
  if (options.tune < -1 || options.tune > 1)
    throw UsageError(fmt::format("tune: {} is not -1 (the profile's), 0 or 1", options.tune));
  if (options.threads < 0 || options.threads > 1024)
    throw UsageError(fmt::format("--threads: {} is outside 0..1024 (0 = every core)", options.threads));
  ExperimentOptions o = options;
  if (o.out.empty()) o.out = fs::path("results") / o.profile;
  const std::vector<int64_t> nesting = default_nesting(profile.latent);
  if (o.dims.empty()) o.dims = nesting;
  if (o.seeds.empty()) o.seeds = profile.seeds;
  if (o.rows.empty()) o.rows = profile.rows.empty() ? experiment_rows() : profile.rows;
  for (int64_t m : o.dims)
    if (std::find(nesting.begin(), nesting.end(), m) == nesting.end())
      throw UsageError(fmt::format("--dims: {} is not in the profile's nesting list {}", m, fmt::join(nesting, ",")));
  for (const auto& r : o.rows)
    if (std::find(experiment_rows().begin(), experiment_rows().end(), r) == experiment_rows().end())
      throw UsageError(fmt::format("--rows: unknown row '{}' (expected {})", r, fmt::join(experiment_rows(), ",")));
  for (const auto& d : o.datasets)
    if (d.empty()) throw UsageError("--datasets: empty name");
  std::sort(o.dims.begin(), o.dims.end());
  o.dims.erase(std::unique(o.dims.begin(), o.dims.end()), o.dims.end());
  return o;
}

/// Whether this rank must send rank 0 the files of what it trains: whether it does not see rank 0's
/// results folder as its own. Rank 0 leaves a token there and passes it on; a rank that finds the
/// same token in its folder shares it. Every rank calls this once, in the same place.
bool sends_files(RankGroup& ranks, const fs::path& out) {
  const fs::path file = out / ".rank0-token";
  std::string token;
  if (ranks.is_root()) {
    std::random_device random;
    token = fmt::format("{:08x}{:08x}", random(), random());
    write_file_atomic(file, token);
  }
  token = ranks.share_from_root(token);
  if (ranks.is_root()) return false;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return true;
  const std::vector<uint8_t> seen = read_file(file);
  return std::string(seen.begin(), seen.end()) != token;
}

}  // namespace

void check_experiment_options(const ExperimentOptions& options) {
  ExperimentProfile profile = experiment_profile(options.profile);
  validated(options, profile);
}

ExperimentResult run_experiment(const ExperimentOptions& options) {
  // --- validate ---
  RunFacts facts;
  facts.start = std::chrono::steady_clock::now();
  facts.load_at_start = load_average();
  facts.cpu_at_start = cpu_times();
  facts.profile = experiment_profile(options.profile);
  const ExperimentOptions o = facts.options = validated(options, facts.profile);
  const ExperimentProfile& profile = facts.profile;
  // For what runs on this thread (the figures; the workers set their own): LibTorch's default here
  // is 1 of 2 cores, as it counts physical cores.
  set_threads(o.threads);
  // Models train and evaluate `jobs` at a time, each on `job_threads` LibTorch threads: two of these
  // small models side by side, one thread each, beat one after the other on two threads by 1.3-1.7x.
  // Ranks on one machine share its cores.
  const int64_t local_ranks = o.ranks ? o.ranks->local_world() : 1;
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()) / local_ranks);
  const int64_t total_threads = o.threads > 0 ? o.threads : cores;
  facts.jobs = o.jobs > 0 ? o.jobs : total_threads;
  facts.job_threads = std::max<int64_t>(1, total_threads / facts.jobs);
  facts.ranks = o.ranks ? o.ranks->world() : 1;
  facts.local_ranks = local_ranks;
  std::mutex log_mutex;
  ScheduleOptions schedule;
  schedule.jobs = facts.jobs;
  schedule.job_threads = facts.job_threads;
  schedule.stop = o.stop;
  schedule.log = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(log_mutex);
    if (o.log) o.log(s);
  };
  const fs::path runs = o.out / "runs";
  std::error_code ec;
  fs::create_directories(runs, ec);
  if (ec) throw Error(o.out.string() + ": cannot create the results folder: " + ec.message());
  if (o.ranks) {
    // Rank 0 alone cleans up, before any rank starts writing into a folder they may share.
    o.ranks->from_root([&] { remove_stale_outputs(o.out, o.datasets); });
    schedule.ranks = o.ranks;
    schedule.root = o.out;
    schedule.send_files = sends_files(*o.ranks, o.out);
  } else {
    remove_stale_outputs(o.out, o.datasets);
  }
  facts.eval = eval_settings(profile);

  ExperimentResult out;
  ResultsBook book(o.out);
  std::deque<TrainTest> data_of;  // each data set's evaluation rows, which its tasks point to
  std::vector<Task> tasks;
  std::vector<std::vector<ModelJob>> mrl_of;  // [data set][seed]
  const bool tune = facts.tuned = o.attempts || (o.tune < 0 ? profile.tune : o.tune > 0);
  for (const auto& dataset : o.datasets) {
    // --- plan (and, when tuning, choose every row's settings on validation data) ---
    const TrainTest full = load_dataset(o.data_root / dataset);
    PlanContext ctx{dataset,
                    o.data_root / dataset,
                    runs,
                    full.train.pixels(),
                    full.train.num_classes,
                    full.train.features,
                    profile,
                    {o.rows.begin(), o.rows.end()},
                    o.dims,
                    facts.job_threads,
                    facts.eval.tag,
                    o.attempts};
    const TrainTest& data = data_of.emplace_back(evaluation_data(full, profile));
    Choice choice;
    choice.set_default(family("mrl-mmd"), profile.mrl_variant);
    for (const FixedChoice& c : profile.choices) {
      if (!c.dataset.empty() && c.dataset != dataset) continue;
      if (c.m == 0) choice.set_default(family(c.family), c.candidate);
      else choice.set(family(c.family), c.m, c.candidate);
    }
    if (tune) {
      // Only the training split reaches the tuning: its validation rows are the last tenth of train.
      const ValidationSplit validation = validation_split(full.train, profile);
      std::vector<Task> trials = plan_tuning(ctx, o.seeds.front(), validation);
      if (!run_tasks(trials, schedule)) {
        out.interrupted = true;
        return out;
      }
      book.note(trials);
      TuningVerdict verdict = judge_tuning(trials, o.dims);
      choice = verdict.choice;
      verdict.record["seed"] = o.seeds.front();
      verdict.record["epochs"] = trials.empty() ? 0 : trials.front().job.config.epochs;
      verdict.record["validation_rows"] = {validation.fit_rows, full.train.size()};
      verdict.record["train_limit"] = validation.train_limit;
      book.set_tuning(dataset, std::move(verdict.record));
      schedule.log(fmt::format("{}: tuning done; the mrl-mmd row uses '{}'", dataset,
                               choice.of(family("mrl-mmd"), profile.latent)));
    }
    book.set_choice(dataset, choice, o.rows, o.dims, profile.latent);
    auto& mrl = mrl_of.emplace_back();
    for (uint64_t seed : o.seeds) mrl.push_back(plan_seed(ctx, seed, choice, data, tasks));
  }

  // --- run ---
  if (!run_tasks(tasks, schedule)) {
    out.interrupted = true;
    return out;
  }
  if (o.ranks && !o.ranks->is_root()) return out;  // rank 0 writes the results
  book.note(tasks);
  book.add_results(tasks);

  // --- write: times, figures, results.json, the report ---
  const bool mrl_row = std::count(o.rows.begin(), o.rows.end(), "mrl-mmd") > 0;
  const bool separate_row = std::count(o.rows.begin(), o.rows.end(), "mmd-at-m") > 0;
  for (size_t d = 0; d < o.datasets.size(); ++d) {
    for (size_t s = 0; s < o.seeds.size(); ++s) {
      if (mrl_row && separate_row) book.add_train_times(o.datasets[d], o.seeds[s], mrl_of[d][s], tasks, o.dims);
      if (mrl_row && s == 0) write_mrl_figures(mrl_of[d][s].dir, data_of[d], o.out, o.datasets[d]);
    }
  }
  out.results_json = book.write(facts);
  out.report_md = o.out / "REPORT.md";
  write_report(out.results_json, o.out);
  schedule.log(fmt::format("results: {}, report: {} ({:.0f} s)", out.results_json.string(), out.report_md.string(),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - facts.start).count()));
  return out;
}

}  // namespace matvae
