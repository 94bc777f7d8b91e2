// Training a model into a run folder (train/run_folder.h), and resuming it. The loop reads top to
// bottom in trainer.cpp: for every epoch, train_epoch(...) over shuffled batches, evaluate(...) on
// the test set, a metrics line, the resume state.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "matvae/data/dataset.h"
#include "matvae/dist/collectives.h"
#include "matvae/models/vae.h"
#include "matvae/train/config.h"
#include "matvae/train/objective.h"

namespace matvae {

struct StepProgress {
  int64_t epoch = 0, epochs = 0;  // epoch is 1-based
  int64_t step = 0, steps = 0;    // within the epoch, 1-based
  double loss = 0;                // running mean of the epoch's training loss
  double images_per_s = 0;
  double eta_s = 0;               // whole remaining run
  int64_t threads = 1;            // the run's threads (of every rank of a thread team together)
  bool split_operations = false;  // the reporting rank's threads split each operation (more than one LibTorch thread)
};

struct TrainHooks {
  std::function<void(const StepProgress&)> on_step;  // null = silent
  std::function<void(const std::string&)> on_log;    // one line per epoch; null = silent
  const std::atomic<bool>* stop = nullptr;           // when set: save the resume state and return
  // Data-parallel: this process is one rank of several (dist/rank_group.h). Each rank computes its
  // shard of every batch, the gradients are summed over the ranks, and rank 0 alone writes the run
  // folder and evaluates. Null: one process, whose threads may themselves be ranks (parallel =
  // batch, dist/thread_team.h).
  Collectives* ranks = nullptr;
};

struct TrainResult {
  bool interrupted = false;
  int64_t epochs_done = 0;
  nlohmann::ordered_json last_metrics;  // the last metrics.jsonl line
  double train_seconds = 0;             // training time summed over all sessions of the run
};

/// The objective's terms per image over a data set or an epoch, per prefix of the nesting list.
/// loss: the objective's total; recon, divergence: [K] (NaN for a prefix that sampling never drew).
struct PrefixStats {
  double loss = 0;
  std::vector<double> recon, divergence;
};

/// Starts a new run in `run_dir` (created; it must not hold a run already).
/// Throws UsageError for bad settings (before anything is written), Error for run-time failures.
TrainResult train(TrainConfig config, const std::filesystem::path& run_dir, const TrainHooks& hooks = {});

/// Continues the run in `run_dir` from its state.pt; `threads` overrides the recorded count.
/// `epochs`, if given and larger than the run's, extends the run (finished or not) to that many
/// epochs, ending exactly where a run started with them would; fewer is a UsageError.
TrainResult resume(const std::filesystem::path& run_dir, const TrainHooks& hooks = {},
                   std::optional<int64_t> threads = std::nullopt, std::optional<int64_t> epochs = std::nullopt);

/// The objective's terms on `data` in order, in batches of `batch_size`; z and prior draws from `seed`.
PrefixStats evaluate(Vae& model, const Objective& objective, const Dataset& data, int64_t batch_size, uint64_t seed);

}  // namespace matvae
