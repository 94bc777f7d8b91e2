// The training objective of every model, per nesting size m:
//   sum_k c_k * [ rec(x, dec(z[:m_k])) + lambda * MMD^2(q(z[:m_k]), p(z[:m_k])) ]   (mmd, mrl-mmd)
//   sum_k c_k * [ rec(x, dec(z[:m_k])) + beta * KL(q(z[:m_k]|x) || N(0, I)) ]        (vae, mrl-vae)
// vae and mmd are the nesting list {D}, so one code path serves all four models.
#pragma once

#include <torch/torch.h>

#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/models/vae.h"
#include "matvae/train/config.h"

namespace matvae {

/// total: scalar; recon, divergence: [K] batch means per prefix (divergence is MMD^2 or KL).
struct LossTerms {
  torch::Tensor total;
  torch::Tensor recon;
  torch::Tensor divergence;
};

class Objective {
 public:
  explicit Objective(const TrainConfig& config);

  /// x: [N, P]; `gen` draws the N prior samples the MMD compares against.
  LossTerms operator()(const VaeOutput& out, const torch::Tensor& x, at::Generator gen) const;

  /// "mmd" or "kl": what the divergence term is, for metric names and messages.
  const char* divergence_name() const { return use_mmd_ ? "mmd" : "kl"; }

 private:
  bool use_mmd_;
  std::vector<int64_t> nesting_;
  torch::Tensor weights_;  // [K]
  double lambda_, beta_;
  Likelihood likelihood_;
  MmdOptions mmd_;
};

}  // namespace matvae
