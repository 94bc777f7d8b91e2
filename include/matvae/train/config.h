// Every setting of a training run in one plain struct, with its default beside it. The CLI and
// TOML files fill it, parsing each choice's text once into its enum; it is written out (resolved)
// as config.toml in every run folder. Models never see the command line. Free of LibTorch (the
// config fuzzer builds it with clang).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "matvae/losses/choices.h"
#include "matvae/models/decoder_form.h"

namespace matvae {

/// Which objective a run trains (docs/design.md, "Models").
enum class ModelKind {
  kVae,     // ELBO: reconstruction + beta * KL
  kMmd,     // MMD-VAE (InfoVAE): reconstruction + lambda * MMD^2 to the prior
  kMrlMmd,  // the MMD-VAE's terms summed over the nesting list's prefixes
  kMrlVae,  // the VAE's terms summed over the nesting list's prefixes
};
/// "vae", "mmd", "mrl-mmd" or "mrl-vae"; anything else throws UsageError naming the value.
ModelKind parse_model_kind(const std::string& name);
std::string to_string(ModelKind model);
inline bool is_mrl(ModelKind m) { return m == ModelKind::kMrlMmd || m == ModelKind::kMrlVae; }
inline bool uses_mmd(ModelKind m) { return m == ModelKind::kMmd || m == ModelKind::kMrlMmd; }

/// How each prefix's terms are weighed against the others' (docs/design.md, "Levers").
enum class Balance {
  kNone,         // c_k * term_k
  kRunningMean,  // c_k * term_k / (running mean of term_k): every prefix's term near c_k
};
Balance parse_balance(const std::string& name);
std::string to_string(Balance balance);

/// What hides the code's tail from the decoder during training: the ordered-code rivals of the
/// Matryoshka loss, for models of the nesting list {D} (docs/design.md, "Ordered codes").
enum class CodeDropout {
  kNone,
  kNested,    // nested dropout: per image a cut b ~ Geometric(dropout_rate) in 1..D, z[b:] zeroed
  kTailDrop,  // unit i (0-based) zeroed with probability dropout_rate * i / (D - 1), independently
};
CodeDropout parse_code_dropout(const std::string& name);
std::string to_string(CodeDropout dropout);

/// How a run's threads share a training step (README, Performance).
enum class Parallel {
  kBatch,  // each thread a rank of data-parallel training with its share of every batch (thread_team.h)
  kOps,    // one model; each operation split over the threads (LibTorch's intra-op threads)
};
Parallel parse_parallel(const std::string& name);
std::string to_string(Parallel parallel);

/// How the learning rate moves over a run's steps (train/lr_schedule.h).
enum class LrSchedule {
  kConstant,  // lr at every step
  kCosine,    // lr * (1 + cos(pi * step / steps)) / 2: from lr at the first step towards 0 at the last
};
LrSchedule parse_lr_schedule(const std::string& name);
std::string to_string(LrSchedule schedule);

struct TrainConfig {
  // model
  ModelKind model = ModelKind::kMrlMmd;
  int64_t latent = 64;                       // D
  std::vector<int64_t> nesting = {};         // MRL models: default 2, 4, 8, ..., D; others: {D}
  std::vector<int64_t> hidden = {512, 256};  // encoder widths, mirrored by the decoder
  DecoderForm decoder = DecoderForm::kTied;  // tied (MRL-E) | separate (MRL)
  Likelihood likelihood = Likelihood::kBernoulli;
  // objective
  MmdKernel kernel = MmdKernel::kGaussian;
  MmdEstimator estimator = MmdEstimator::kBiased;
  double bandwidth = 2.0;                    // kernel width per latent dim: exp(-|a-b|^2 / (bandwidth*m)); 0 = InfoVAE's m^2
  double lambda = 100.0;                     // MMD weight
  double beta = 1.0;                         // KL weight
  std::vector<double> weights = {};          // c_m per nesting size; empty = all 1
  std::vector<double> lambdas = {};          // MMD weight per nesting size; empty = lambda for every size
  double warmup = 0.0;                       // epochs over which the divergence weight ramps from 0; 0 = off
  Balance balance = Balance::kNone;          // none | running-mean
  double distill = 0.0;                      // weight of the self-distillation toward the full code; 0 = off
  double distill_temperature = 0.1;          // its softmax temperature (distances scaled by their batch mean)
  CodeDropout code_dropout = CodeDropout::kNone;  // none | nested | taildrop (vae and mmd only)
  double dropout_rate = 0.1;                 // nested: the geometric law's p; taildrop: the last unit's rate
  std::string init_from = "";                // warm start: a finished run folder whose weights this run starts from
  int64_t prefix_sample = 0;                 // prefixes trained per step, drawn at random (c_m scaled by K/this); 0 = all
  // optimisation
  double lr = 1e-3;
  LrSchedule lr_schedule = LrSchedule::kConstant;  // constant | cosine (over all the run's steps)
  double weight_decay = 0.0;
  int64_t batch_size = 128;
  int64_t epochs = 10;
  uint64_t seed = 0;
  int64_t threads = 0;                       // 0 = every core
  Parallel parallel = Parallel::kBatch;      // batch | ops: how the threads share a step
  int64_t limit = 0;                         // train on the first N images; 0 = all
  int64_t checkpoint_every = 0;              // also checkpoint every N steps; 0 = once per epoch
  // data
  std::string data = "data/mnist";
  int64_t classes = 0;                       // labels in [0, classes); 0 = counted from them (then recorded)

  bool is_mrl() const { return matvae::is_mrl(model); }
  bool uses_mmd() const { return matvae::uses_mmd(model); }
};

/// Fills defaults that depend on other fields (the nesting list) and checks every value.
/// Throws matvae::UsageError naming the setting and the bad value.
void resolve(TrainConfig& config);

/// Applies the keys of a TOML file to `config`. Unknown keys, wrong types and unreadable or
/// malformed files throw matvae::UsageError naming the file and key.
void apply_toml(TrainConfig& config, const std::filesystem::path& path);
/// Applies TOML text (used by apply_toml and tests); `name` is used in messages.
void apply_toml_text(TrainConfig& config, const std::string& text, const std::string& name);

/// The config as TOML, every field written.
std::string to_toml(const TrainConfig& config);

/// A stable hash of everything that affects training results (threads and paths excluded), hex.
std::string config_hash(const TrainConfig& config);

}  // namespace matvae
