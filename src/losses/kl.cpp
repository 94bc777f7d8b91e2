// Closed-form KL of a diagonal Gaussian to the standard normal, whole and per prefix.
#include "matvae/losses/kl.h"

namespace matvae {

namespace {

void check_inputs(const torch::Tensor& mu, const torch::Tensor& logvar, const char* fn) {
  TORCH_CHECK(mu.dim() == 2, fn, ": expected mu of shape [N, D], got ", mu.sizes());
  TORCH_CHECK(mu.sizes() == logvar.sizes(), fn, ": expected logvar of the shape of mu ", mu.sizes(), ", got ",
              logvar.sizes());
  TORCH_CHECK(mu.size(0) > 0, fn, ": expected at least one row, got mu ", mu.sizes());
}

/// [N, D]: the KL of each image's posterior, per latent dimension.
torch::Tensor kl_per_dim(const torch::Tensor& mu, const torch::Tensor& logvar) {
  return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar);
}

}  // namespace

torch::Tensor loss_kl(const torch::Tensor& mu, const torch::Tensor& logvar) {
  check_inputs(mu, logvar, "loss_kl");
  return kl_per_dim(mu, logvar).sum(1).mean();
}

torch::Tensor loss_kl_prefixes(const torch::Tensor& mu, const torch::Tensor& logvar,
                               const std::vector<int64_t>& nesting) {
  check_inputs(mu, logvar, "loss_kl_prefixes");
  const int64_t d = mu.size(1);
  TORCH_CHECK(!nesting.empty(), "loss_kl_prefixes: expected a non-empty nesting list ending at D = ", d);
  TORCH_CHECK(nesting.front() >= 1, "loss_kl_prefixes: expected nesting values >= 1, got ", c10::IntArrayRef(nesting));
  for (size_t k = 1; k < nesting.size(); ++k) {
    TORCH_CHECK(nesting[k] > nesting[k - 1], "loss_kl_prefixes: expected a strictly increasing nesting list, got ",
                c10::IntArrayRef(nesting));
  }
  TORCH_CHECK(nesting.back() == d, "loss_kl_prefixes: expected the last nesting value to equal D = ", d, ", got ",
              c10::IntArrayRef(nesting));
  // Mean over N commutes with the partial sums, so take it first: [D] -> cumsum -> pick m_k - 1.
  const auto cum = kl_per_dim(mu, logvar).mean(0).cumsum(0);
  std::vector<int64_t> last(nesting.size());
  for (size_t k = 0; k < nesting.size(); ++k) last[k] = nesting[k] - 1;
  const auto idx = torch::tensor(last, torch::TensorOptions().dtype(torch::kInt64).device(cum.device()));
  return cum.index_select(0, idx);
}

}  // namespace matvae
