// results.json: every number of the experiment with what produced it (settings, configs, commits,
// machine, times). The report (report/report.h) is written from this file alone, so it also carries
// the row titles and variant descriptions the report prints.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "matvae/experiment/experiment.h"
#include "matvae/experiment/plan.h"
#include "matvae/experiment/tuning.h"
#include "matvae/util/machine.h"

namespace matvae {

/// How the experiment ran, for results.json's header.
struct RunFacts {
  ExperimentOptions options;  // resolved: dims, seeds and rows filled in
  ExperimentProfile profile;
  EvalSettings eval;
  int64_t jobs = 1, job_threads = 1;
  int64_t ranks = 1;  // processes that shared the work (a distributed experiment), each with `jobs` jobs
  bool tuned = false;  // every tuned row chose its settings on validation data
  double load_at_start = -1;
  CpuTimes cpu_at_start;    // with the end's reading: the cores other processes kept busy meanwhile
  int64_t local_ranks = 1;  // this machine's ranks, whose CPU time is not this process's own
  std::chrono::steady_clock::time_point start;
};

/// results.json as the experiment gathers it, written whole at the end.
class ResultsBook {
 public:
  explicit ResultsBook(std::filesystem::path out) : out_(std::move(out)) {}

  /// Lists each task's model once (run folder, config, training seconds and builds) and counts the
  /// builds that computed each task's evaluation.
  void note(const std::vector<Task>& tasks);
  /// The tasks' numbers, as results[dataset][row][m][seed].
  void add_results(const std::vector<Task>& tasks);
  /// The training time of one MRL-MMD-VAE against the separately trained MMD-VAEs of `tasks`.
  void add_train_times(const std::string& dataset, uint64_t seed, const ModelJob& mrl, const std::vector<Task>& tasks,
                       const std::vector<int64_t>& dims);
  /// What each family of the `rows` run uses on `dataset` (at each of `dims` for per-m families): the
  /// tuned choice or the profile's settings.
  void set_choice(const std::string& dataset, const Choice& choice, const std::vector<std::string>& rows,
                  const std::vector<int64_t>& dims, int64_t latent);
  void set_tuning(const std::string& dataset, nlohmann::ordered_json record) { tuning_[dataset] = std::move(record); }

  /// Writes out/results.json and returns its path.
  std::filesystem::path write(const RunFacts& facts) const;

 private:
  double seconds_of(const ModelJob& job) const;

  std::filesystem::path out_;
  nlohmann::ordered_json results_ = nlohmann::ordered_json::object(), models_ = nlohmann::ordered_json::object(),
                         configs_ = nlohmann::ordered_json::object(), wall_ = nlohmann::ordered_json::object(),
                         tuning_ = nlohmann::ordered_json::object(), variants_ = nlohmann::ordered_json::object(),
                         chosen_ = nlohmann::ordered_json::object(),
                         evaluations_by_ = nlohmann::ordered_json::object();
};

}  // namespace matvae
