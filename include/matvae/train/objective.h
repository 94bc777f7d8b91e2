// The training objective of every model, per nesting size m:
//   sum_k c_k * [ rec(x, dec(z[:m_k])) + s * lambda_k * MMD^2(q(z[:m_k]), p(z[:m_k])) ]   (mmd, mrl-mmd)
//   sum_k c_k * [ rec(x, dec(z[:m_k])) + s * beta * KL(q(z[:m_k]|x) || N(0, I)) ]        (vae, mrl-vae)
// lambda_k is `lambdas[k]`, or `lambda` for every k; s in [0, 1] is the warm-up scale.
// Levers (docs/design.md): with balance, each bracket is divided by a running mean of its own value
// (kept by the trainer); with distill = g > 0, g * sum_k c_k * KL(full code's similarity rows ||
// prefix k's) is added (losses/distill.h).
// vae and mmd are the nesting list {D}, so one code path serves all four models.
// With prefix sampling a step sums over S of the K prefixes, drawn at random, each c_k scaled by
// K / S: the same objective in expectation at about S/K of the decoder's cost.
#pragma once

#include <torch/torch.h>

#include "matvae/dist/rank_group.h"
#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/models/vae.h"
#include "matvae/train/config.h"

namespace matvae {

/// total: scalar; recon, divergence: [S] batch means for the prefixes the output was decoded at
/// (VaeOutput::prefixes; all K unless sampled). divergence is MMD^2 or KL.
struct LossTerms {
  torch::Tensor total;
  torch::Tensor recon;
  torch::Tensor divergence;
  torch::Tensor terms;  // [S], no gradient: each prefix's bracket, rec + s * lambda_k * div (what balance divides)
};

class Objective {
 public:
  explicit Objective(const TrainConfig& config);

  /// x: [N, P]; `gen` draws the N prior samples the MMD compares against. `divergence_scale`
  /// multiplies the divergence weights (the warm-up; recon and divergence terms are unscaled).
  /// `balance`: [K] divisors of the brackets (running means), or empty for none; a divisor that is
  /// not a positive number (a prefix not seen yet) is replaced by the bracket's own current value.
  /// `shard`, in data-parallel training: `out` and x are this rank's rows of the global batch. The
  /// terms then have the whole batch's values on every rank (the MMD and the distillation over the
  /// gathered codes), and their gradient flows through this rank's rows only, so that the sum of
  /// the ranks' gradients is the one-process gradient of the whole batch.
  LossTerms operator()(const VaeOutput& out, const torch::Tensor& x, at::Generator gen,
                       double divergence_scale = 1.0, const std::vector<double>& balance = {},
                       const BatchShard* shard = nullptr) const;

  /// The nesting indices one training step uses: all K (without drawing) when `sample` is 0 or
  /// >= K, else `sample` distinct ones drawn uniformly with `gen`, ascending.
  static std::vector<int64_t> draw_prefixes(int64_t K, int64_t sample, at::Generator gen);

  /// The warm-up scale after `step` optimiser steps: min(1, step / (warmup epochs * steps_per_epoch)).
  static double warmup_scale(const TrainConfig& config, int64_t step, int64_t steps_per_epoch);

  /// "mmd" or "kl": what the divergence term is, for metric names and messages.
  const char* divergence_name() const { return use_mmd_ ? "mmd" : "kl"; }

 private:
  bool use_mmd_;
  std::vector<int64_t> nesting_;
  std::vector<float> weights_;             // c_k: [K]
  std::vector<float> divergence_weights_;  // lambda_k or beta: [K]
  Likelihood likelihood_;
  MmdOptions mmd_;
  double distill_ = 0, distill_temperature_ = 1;
};

}  // namespace matvae
