// Assembling the per-prefix loss terms; see objective.h.
#include "matvae/train/objective.h"

#include "matvae/losses/kl.h"

namespace matvae {

Objective::Objective(const TrainConfig& config)
    : use_mmd_(config.uses_mmd()),
      nesting_(config.nesting),
      weights_(torch::tensor(std::vector<float>(config.weights.begin(), config.weights.end()))),
      lambda_(config.lambda),
      beta_(config.beta),
      likelihood_(parse_likelihood(config.likelihood)) {
  mmd_.kernel = parse_mmd_kernel(config.kernel);
  mmd_.unbiased = config.estimator == "unbiased";
  mmd_.bandwidth = config.bandwidth;
}

LossTerms Objective::operator()(const VaeOutput& out, const torch::Tensor& x, at::Generator gen) const {
  const int64_t K = out.logits.size(0), N = x.size(0);
  LossTerms t;
  // [K, N, P] -> [K*N, P] so the loss runs once over all prefixes.
  const auto target = x.unsqueeze(0).expand_as(out.logits).reshape({K * N, -1});
  t.recon = loss_recon(out.logits.reshape({K * N, -1}), target, likelihood_).view({K, N}).mean(1);
  double weight;
  if (use_mmd_) {
    const auto prior = at::randn(out.z.sizes(), gen, out.z.options());
    t.divergence = loss_mmd_prefixes(out.z, prior, nesting_, mmd_);
    weight = lambda_;
  } else {
    t.divergence = loss_kl_prefixes(out.mu, out.logvar, nesting_);
    weight = beta_;
  }
  const auto w = weights_.to(x.device());
  t.total = (w * (t.recon + weight * t.divergence)).sum();
  return t;
}

}  // namespace matvae
