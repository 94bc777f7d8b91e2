// Reconstruction losses: Bernoulli cross-entropy and squared error.
#include "matvae/losses/recon.h"

#include <cmath>

#include "matvae/losses/bernoulli_prefixes.h"

namespace matvae {

torch::Tensor output_mean(const torch::Tensor& logits, Likelihood likelihood) {
  return likelihood == Likelihood::kNormal ? logits : torch::sigmoid(logits);
}

torch::Tensor loss_recon(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood) {
  TORCH_CHECK(logits.dim() == 2, "loss_recon: expected logits of shape [N, P], got ", logits.sizes());
  TORCH_CHECK(x.sizes() == logits.sizes(), "loss_recon: expected x of the shape of logits ", logits.sizes(),
              ", got ", x.sizes());
  switch (likelihood) {
    case Likelihood::kBernoulli:
      return torch::binary_cross_entropy_with_logits(logits, x, /*weight=*/{}, /*pos_weight=*/{},
                                                     at::Reduction::None)
          .sum(1);
    case Likelihood::kGaussian:
      return (x - torch::sigmoid(logits)).square().sum(1);
    case Likelihood::kNormal:
      // -log N(x; output, I) = ||x - output||^2 / 2 + (P / 2) log(2 pi).
      return 0.5 * (x - logits).square().sum(1) + 0.5 * static_cast<double>(x.size(1)) * std::log(2 * M_PI);
  }
  TORCH_INTERNAL_ASSERT(false, "unhandled Likelihood ", static_cast<int>(likelihood));
}

torch::Tensor loss_recon_prefixes(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood) {
  return likelihood == Likelihood::kBernoulli ? bernoulli_nll_prefixes(logits, x)
                                              : loss_recon_prefixes_plain(logits, x, likelihood);
}

void check_prefix_shapes(const torch::Tensor& logits, const torch::Tensor& x, const char* fn) {
  TORCH_CHECK(logits.dim() == 3, fn, ": expected logits of shape [S, N, P], got ", logits.sizes());
  TORCH_CHECK(x.dim() == 2 && x.size(0) == logits.size(1) && x.size(1) == logits.size(2), fn,
              ": expected x of shape [N, P] = ", logits.sizes().slice(1), ", got ", x.sizes());
}

torch::Tensor loss_recon_prefixes_plain(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood) {
  check_prefix_shapes(logits, x, "loss_recon_prefixes");
  const int64_t S = logits.size(0), N = logits.size(1);
  // [S, N, P] -> [S*N, P] so the loss runs once over all prefixes.
  const auto target = x.unsqueeze(0).expand_as(logits).reshape({S * N, -1});
  return loss_recon(logits.reshape({S * N, -1}), target, likelihood).view({S, N});
}

}  // namespace matvae
