// A run folder, and the one type that knows what it holds: no other file names its files.
//   config.toml    every setting, resolved (written first; marks the folder as a run)
//   metrics.jsonl  one JSON line per finished epoch: train and test terms per prefix, seconds, build
//   state.pt       resume state: weights, Adam, RNG, progress and the epoch's per-prefix sums,
//                  with the hash of config.toml's settings and the checksum of metrics.jsonl so far
//   checkpoint.pt  the final weights (written last; marks the run as finished)
//   recon.png, samples.png   test reconstructions and prior samples per prefix
//   eval.json, adaptive.json   `matvae eval`'s and `matvae retrieve`'s numbers
//   eval-*.json, val-*.json    the experiment's cached evaluations
// state.pt and checkpoint.pt use util/checked_file.h's integrity envelope; every file is written
// atomically.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "matvae/models/vae.h"
#include "matvae/train/config.h"

namespace matvae {

/// Sums over the batches of the epoch in progress, per prefix, each term times its batch size:
/// divided by the image counts they give the epoch's means. Saved with the resume state, so that a
/// run resumed mid-epoch reports the means an uninterrupted one would.
struct PrefixSums {
  double loss = 0;                    // the objective's total
  double images = 0;                  // images of every step
  std::vector<double> recon;          // [K]
  std::vector<double> divergence;     // [K]
  std::vector<double> prefix_images;  // [K] images of the steps that drew prefix k (all, unsampled)

  explicit PrefixSums(size_t prefixes = 0)
      : recon(prefixes, 0.0), divergence(prefixes, 0.0), prefix_images(prefixes, 0.0) {}
  size_t prefixes() const { return recon.size(); }
};

/// Where a run stands.
struct RunProgress {
  int64_t epoch = 0;          // 0-based epoch in progress (== epochs when finished)
  int64_t step_in_epoch = 0;  // batches of that epoch already done
  int64_t global_step = 0;
  double train_seconds = 0;   // summed over every session of the run
  PrefixSums sums;
  std::vector<double> balance;  // [K] running means of the prefixes' brackets (balance = running-mean); else empty
};

/// A resume state as loaded: where the run stands and the metrics.jsonl lines it covers.
struct ResumePoint {
  RunProgress progress;
  std::vector<std::string> metric_lines;
};

/// What a run's metrics.jsonl says of its training: the seconds of its epochs, summed, and the
/// builds that trained them, in epoch order ("unknown" for lines from before builds recorded it).
struct TrainingRecord {
  double seconds = 0;
  std::vector<std::string> builds;
};

/// A finished run: its resolved settings and final weights, in eval mode.
struct LoadedRun {
  TrainConfig config;
  Vae model{nullptr};
};

class RunFolder {
 public:
  explicit RunFolder(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path config_file() const { return dir_ / "config.toml"; }
  std::filesystem::path metrics_file() const { return dir_ / "metrics.jsonl"; }
  std::filesystem::path state_file() const { return dir_ / "state.pt"; }
  std::filesystem::path checkpoint_file() const { return dir_ / "checkpoint.pt"; }
  std::filesystem::path recon_png() const { return dir_ / "recon.png"; }
  std::filesystem::path samples_png() const { return dir_ / "samples.png"; }
  std::filesystem::path eval_file() const { return dir_ / "eval.json"; }
  std::filesystem::path adaptive_file() const { return dir_ / "adaptive.json"; }
  /// The experiment's cached evaluations: of `row` on the test set, and on the validation split,
  /// `tag` naming the evaluation settings.
  std::filesystem::path eval_cache(const std::string& row, const std::string& tag) const {
    return dir_ / ("eval-" + row + "-" + tag + ".json");
  }
  std::filesystem::path validation_cache(const std::string& tag) const { return dir_ / ("val-" + tag + ".json"); }

  bool has_config() const;
  bool has_state() const;
  bool is_finished() const;  // checkpoint.pt is there

  // --- settings ---
  /// Creates the folder and writes config.toml. Throws UsageError if `--out` names a file.
  void create(const TrainConfig& config) const;
  /// config.toml, resolved. Throws Error naming the folder or file.
  TrainConfig read_config() const;

  // --- metrics ---
  /// The lines of epochs 1..epochs_done (a crash between writing metrics and state can leave one
  /// more). Throws Error naming a line that is not JSON.
  std::vector<std::string> read_metric_lines(int64_t epochs_done) const;
  void write_metric_lines(const std::vector<std::string>& lines) const;
  TrainingRecord training_record() const;

  // --- resume state and final weights ---
  void save_state(Vae& model, torch::optim::Optimizer& optimizer, const at::Generator& gen, const RunProgress& p,
                  const TrainConfig& config, const std::vector<std::string>& metric_lines) const;
  /// Loads state.pt into `model`, `optimizer` and `gen` and returns where the run stands, after
  /// checking that it belongs to `config` and that metrics.jsonl still holds the lines it covers.
  ResumePoint load_state(Vae& model, torch::optim::Optimizer& optimizer, at::Generator& gen,
                         const TrainConfig& config) const;
  /// The resume state as bytes (state.pt's contents, without the metrics checksum), and loading
  /// such bytes: how rank 0 passes the state it starts from to the other ranks of a data-parallel run.
  static std::string state_bytes(Vae& model, torch::optim::Optimizer& optimizer, const at::Generator& gen,
                                 const RunProgress& p, const TrainConfig& config);
  static RunProgress load_state_bytes(const std::string& bytes, Vae& model, torch::optim::Optimizer& optimizer,
                                      at::Generator& gen, const TrainConfig& config);
  /// Verifies state.pt and that it belongs to `config`, without loading it into a model.
  void check_state(const TrainConfig& config) const;
  /// The config hash state.pt records (after verifying the file).
  std::string state_config_hash() const;
  void save_checkpoint(Vae& model, const TrainConfig& config) const;
  /// The finished run (config.toml and checkpoint.pt). The model's input size comes from a test split:
  /// of `data` where given (a run trained elsewhere, or moved, read against a copy of its data), else
  /// of the data folder the run names. Throws Error naming what is missing or damaged.
  LoadedRun load(const std::filesystem::path& data = {}) const;

  /// Copies the files a run resumes from (settings, metrics, resume state) into a new folder `dest`,
  /// config.toml last: the start of a longer run of the same settings (resume with epochs).
  void copy_resumable(const std::filesystem::path& dest) const;

  /// Removes temporaries that a process killed while writing one of the run's files left behind.
  void remove_stale_temporaries() const;
  /// Whether a file name is one of the experiment's cached evaluations (for the same clean-up).
  static bool is_cache_name(const std::string& name);

 private:
  std::filesystem::path dir_;
};

}  // namespace matvae
