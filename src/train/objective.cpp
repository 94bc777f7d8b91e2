// Assembling the per-prefix loss terms; see objective.h.
#include "matvae/train/objective.h"

#include <algorithm>

#include "matvae/losses/distill.h"
#include "matvae/losses/kl.h"

namespace matvae {

Objective::Objective(const TrainConfig& config)
    : use_mmd_(config.uses_mmd()),
      nesting_(config.nesting),
      weights_(config.weights.begin(), config.weights.end()),
      divergence_weights_(config.uses_mmd() ? (config.lambdas.empty() ? std::vector<float>(config.nesting.size(), config.lambda)
                                                                        : std::vector<float>(config.lambdas.begin(), config.lambdas.end()))
                                            : std::vector<float>(config.nesting.size(), config.beta)),
      likelihood_(config.likelihood),
      distill_(config.distill),
      distill_temperature_(config.distill_temperature) {
  mmd_.kernel = config.kernel;
  mmd_.unbiased = config.estimator == MmdEstimator::kUnbiased;
  mmd_.bandwidth = config.bandwidth;
}

LossTerms Objective::operator()(const VaeOutput& out, const torch::Tensor& x, at::Generator gen,
                                double divergence_scale, const std::vector<double>& balance,
                                const BatchShard* shard) const {
  const int64_t S = out.logits.size(0), K = static_cast<int64_t>(nesting_.size());
  TORCH_CHECK(static_cast<int64_t>(out.prefixes.size()) == S, "expected one prefix index per decoded prefix, got ",
              out.prefixes.size(), " for ", S);
  LossTerms t;
  // A mean over images: over the whole batch in value, this rank's share of it in gradient.
  const auto batch_mean = [shard](const torch::Tensor& local_mean) {
    return shard ? shard->batch_mean(local_mean) : local_mean;
  };
  t.recon = batch_mean(loss_recon_prefixes(out.logits, x, likelihood_).mean(1));
  // The divergence of the drawn prefixes: the code up to the largest of them, nested at them.
  std::vector<int64_t> nesting;
  std::vector<float> c, lambda;
  const float share = static_cast<float>(K) / static_cast<float>(S);  // exactly 1 without sampling
  for (const int64_t k : out.prefixes) {
    nesting.push_back(nesting_[k]);
    c.push_back(weights_[k] * share);
    lambda.push_back(divergence_weights_[k] * static_cast<float>(divergence_scale));
  }
  const int64_t width = nesting.back();
  if (use_mmd_) {
    // Over the whole batch's codes (the MMD compares distributions, so it is a function of the
    // batch, not a mean over images). The prior is drawn at full width and for the whole batch
    // whatever is used, so a step takes the same random numbers on one process or many.
    const auto z = shard ? shard->gather(out.z) : out.z;
    const auto prior = at::randn(z.sizes(), gen, z.options());
    if (shard && shard->group && z.device().is_cpu() && z.scalar_type() == torch::kFloat32) {
      // Each rank sums the pairs of its own rows of codes and of draws, and the ranks add their
      // sums: the MMD's work split over them, each getting its own codes' gradient.
      const RowShare mine{shard->offset, shard->rows};
      t.divergence = shard->rank_sum(
          loss_mmd_prefix_share(z.narrow(1, 0, width), prior.narrow(1, 0, width), nesting, mmd_, mine, mine));
    } else {
      t.divergence = loss_mmd_prefixes(z.narrow(1, 0, width), prior.narrow(1, 0, width), nesting, mmd_);
    }
  } else {
    t.divergence =
        batch_mean(loss_kl_prefixes(out.mu.narrow(1, 0, width), out.logvar.narrow(1, 0, width), nesting));
  }
  const auto brackets = t.recon + torch::tensor(lambda, x.options()) * t.divergence;  // [S]
  t.terms = brackets.detach();
  if (balance.empty()) {
    t.total = (torch::tensor(c, x.options()) * brackets).sum();
  } else {
    TORCH_CHECK(balance.size() == nesting_.size(), "expected one balance divisor per prefix, got ", balance.size());
    std::vector<float> divisor;
    const auto values = t.terms.to(torch::kFloat64).contiguous();
    for (size_t s = 0; s < out.prefixes.size(); ++s) {
      const double b = balance[static_cast<size_t>(out.prefixes[s])];
      divisor.push_back(static_cast<float>(b > 0 ? b : values.data_ptr<double>()[s]));
    }
    t.total = (torch::tensor(c, x.options()) * brackets / torch::tensor(divisor, x.options())).sum();
  }
  if (distill_ > 0) {
    // Toward the full code's neighbours (the posterior means, which k-NN uses), for the drawn prefixes.
    const auto kl = loss_distill_prefixes(shard ? shard->gather(out.mu) : out.mu, nesting_, distill_temperature_)
                        .index_select(0, torch::tensor(out.prefixes, torch::kInt64));
    t.total = t.total + distill_ * (torch::tensor(c, x.options()) * kl).sum();
  }
  return t;
}

std::vector<int64_t> Objective::draw_prefixes(int64_t K, int64_t sample, at::Generator gen) {
  std::vector<int64_t> which;
  if (sample <= 0 || sample >= K) {
    for (int64_t k = 0; k < K; ++k) which.push_back(k);
    return which;
  }
  const auto drawn = std::get<0>(torch::randperm(K, gen, torch::kInt64).narrow(0, 0, sample).sort());
  return std::vector<int64_t>(drawn.data_ptr<int64_t>(), drawn.data_ptr<int64_t>() + sample);
}

double Objective::warmup_scale(const TrainConfig& config, int64_t step, int64_t steps_per_epoch) {
  if (config.warmup <= 0) return 1.0;
  return std::min(1.0, static_cast<double>(step) / (config.warmup * static_cast<double>(steps_per_epoch)));
}

}  // namespace matvae
