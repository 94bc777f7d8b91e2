// Assembling the per-prefix loss terms; see objective.h.
#include "matvae/train/objective.h"

#include <algorithm>

#include "matvae/losses/kl.h"

namespace matvae {

Objective::Objective(const TrainConfig& config)
    : use_mmd_(config.uses_mmd()),
      nesting_(config.nesting),
      weights_(torch::tensor(std::vector<float>(config.weights.begin(), config.weights.end()))),
      divergence_weights_(config.uses_mmd() ? (config.lambdas.empty() ? std::vector<float>(config.nesting.size(), config.lambda)
                                                                        : std::vector<float>(config.lambdas.begin(), config.lambdas.end()))
                                            : std::vector<float>(config.nesting.size(), config.beta)),
      likelihood_(parse_likelihood(config.likelihood)) {
  mmd_.kernel = parse_mmd_kernel(config.kernel);
  mmd_.unbiased = config.estimator == "unbiased";
  mmd_.bandwidth = config.bandwidth;
}

LossTerms Objective::operator()(const VaeOutput& out, const torch::Tensor& x, at::Generator gen,
                                double divergence_scale) const {
  const int64_t K = out.logits.size(0), N = x.size(0);
  LossTerms t;
  // [K, N, P] -> [K*N, P] so the loss runs once over all prefixes.
  const auto target = x.unsqueeze(0).expand_as(out.logits).reshape({K * N, -1});
  t.recon = loss_recon(out.logits.reshape({K * N, -1}), target, likelihood_).view({K, N}).mean(1);
  if (use_mmd_) {
    const auto prior = at::randn(out.z.sizes(), gen, out.z.options());
    t.divergence = loss_mmd_prefixes(out.z, prior, nesting_, mmd_);
  } else {
    t.divergence = loss_kl_prefixes(out.mu, out.logvar, nesting_);
  }
  const auto c = weights_.to(x.device());
  const auto lambda = torch::tensor(divergence_weights_, x.options()) * divergence_scale;
  t.total = (c * (t.recon + lambda * t.divergence)).sum();
  return t;
}

double Objective::warmup_scale(const TrainConfig& config, int64_t step, int64_t steps_per_epoch) {
  if (config.warmup <= 0) return 1.0;
  return std::min(1.0, static_cast<double>(step) / (config.warmup * static_cast<double>(steps_per_epoch)));
}

}  // namespace matvae
