// The KL term of the VAE: KL(q(z|x) || N(0, I)) for a diagonal Gaussian posterior, in closed form,
// for the whole code and for every Matryoshka prefix z[:m] at once (KL is a sum over dimensions,
// so a prefix's KL is a partial sum).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace matvae {

/// mu, logvar: [N, D] -> scalar: mean over N of sum over D of
/// 0.5 * (mu^2 + exp(logvar) - 1 - logvar), in nats.
torch::Tensor loss_kl(const torch::Tensor& mu, const torch::Tensor& logvar);

/// mu, logvar: [N, D]; nesting: m_1 < ... < m_K = D -> [K], element k = loss_kl of the prefix
/// mu[:, :m_k], logvar[:, :m_k]. One per-dimension KL, then a cumulative sum: the cost of one loss_kl.
torch::Tensor loss_kl_prefixes(const torch::Tensor& mu, const torch::Tensor& logvar,
                               const std::vector<int64_t>& nesting);

}  // namespace matvae
