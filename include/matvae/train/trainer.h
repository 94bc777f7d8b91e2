// Training a model into a run folder, resuming it, and loading it back.
// A run folder holds: config.toml (resolved settings), metrics.jsonl (one line per epoch),
// state.pt (resume state: weights, Adam, RNG, progress; every epoch and every
// checkpoint_every steps), checkpoint.pt (final weights + config), recon.png, samples.png.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "matvae/data/dataset.h"
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
};

struct TrainHooks {
  std::function<void(const StepProgress&)> on_step;  // null = silent
  std::function<void(const std::string&)> on_log;    // one line per epoch; null = silent
  const std::atomic<bool>* stop = nullptr;           // when set: save the resume state and return
};

struct TrainResult {
  bool interrupted = false;
  int64_t epochs_done = 0;
  nlohmann::ordered_json last_metrics;  // the last metrics.jsonl line
  double train_seconds = 0;             // training time summed over all sessions of the run
};

/// Per-prefix losses of a data set, as batch means weighted by batch size.
/// recon, divergence: [K]; loss: the objective's total.
struct EvalStats {
  double loss = 0;
  std::vector<double> recon, divergence;
};

/// Starts a new run in `run_dir` (created; it must not hold a run already).
/// Throws UsageError for bad settings (before anything is written), Error for run-time failures.
TrainResult train(TrainConfig config, const std::filesystem::path& run_dir, const TrainHooks& hooks = {});

/// Continues the run in `run_dir` from its state.pt; `threads` overrides the recorded count.
TrainResult resume(const std::filesystem::path& run_dir, const TrainHooks& hooks = {},
                   std::optional<int64_t> threads = std::nullopt);

/// The objective's terms on `data` in order, in batches of `batch_size`; z and prior draws from `seed`.
EvalStats evaluate(Vae& model, const Objective& objective, const Dataset& data, int64_t batch_size, uint64_t seed);

/// A finished run: its resolved config and final weights (from checkpoint.pt).
struct LoadedRun {
  TrainConfig config;
  Vae model{nullptr};
};
LoadedRun load_run(const std::filesystem::path& run_dir);

/// Reads a run folder's config.toml (resolved). Throws Error naming the file.
TrainConfig read_run_config(const std::filesystem::path& run_dir);

/// Sets LibTorch's intra-op threads for the calling thread: n, or every core for 0. It also makes
/// this thread and its OpenMP team (LibTorch's and OpenBLAS's workers) flush subnormal floats to
/// zero: a long training drives some logits so negative that their sigmoids and gradients go
/// subnormal, and every product that touches one then runs several times slower.
void set_threads(int64_t n);

}  // namespace matvae
