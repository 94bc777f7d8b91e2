// PCA: a float64 covariance accumulated over blocks of rows, its eigendecomposition, a sign
// convention that makes the components deterministic, and the projections to and from codes.
#include "matvae/eval/pca.h"

#include <algorithm>

namespace matvae {

namespace {

// Rows converted to float64 at a time: 8192 x 784 doubles is about 50 MB.
constexpr int64_t kBlockRows = 8192;

void check_fitted(const Pca& pca, const char* fn) {
  TORCH_CHECK(pca.mean.defined() && pca.components.defined() && pca.components.dim() == 2 && pca.mean.dim() == 1 &&
                  pca.components.size(1) == pca.mean.size(0),
              fn, ": expected a fitted Pca (mean [P], components [k, P])");
}

}  // namespace

Pca fit_pca(const torch::Tensor& x, int64_t k) {
  TORCH_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1 && x.size(1) >= 1,
              "fit_pca: expected data of shape [N, P] with N, P >= 1, got ",
              x.defined() ? x.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "fit_pca: expected floating data, got ", x.scalar_type());
  TORCH_CHECK(k >= 1 && k <= x.size(1), "fit_pca: expected k in [1, P = ", x.size(1), "], got ", k);
  TORCH_CHECK(torch::isfinite(x).all().item<bool>(), "fit_pca: the data hold a NaN or infinity");
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0), p = x.size(1);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

  // Two passes over blocks, so that no float64 copy of all of x is ever held.
  auto sum = torch::zeros({p}, f64);
  for (int64_t s = 0; s < n; s += kBlockRows)
    sum += x.narrow(0, s, std::min(kBlockRows, n - s)).to(torch::kFloat64).sum(0);
  Pca pca;
  pca.mean = sum / static_cast<double>(n);
  auto cov = torch::zeros({p, p}, f64);
  for (int64_t s = 0; s < n; s += kBlockRows) {
    const auto xc = x.narrow(0, s, std::min(kBlockRows, n - s)).to(torch::kFloat64) - pca.mean;
    cov.addmm_(xc.t(), xc);
  }
  cov /= static_cast<double>(n);
  pca.total_variance = cov.trace().item<double>();

  const auto [values, vectors] = torch::linalg_eigh(cov);  // ascending values, vectors as columns
  const auto top = torch::arange(p - 1, p - 1 - k, -1, torch::TensorOptions().dtype(torch::kInt64));
  auto components = vectors.index_select(1, top).t().contiguous();  // [k, P]
  // Eigenvectors are defined up to sign: make each row's largest-magnitude entry positive.
  const auto peak = components.abs().argmax(1, /*keepdim=*/true);  // the first maximum on ties
  components *= components.gather(1, peak).sign();
  pca.components = components;
  // Rounding can leave the smallest eigenvalues a hair below 0; a variance cannot be.
  pca.explained_variance = values.index_select(0, top).clamp_min(0.0);
  return pca;
}

torch::Tensor pca_transform(const Pca& pca, const torch::Tensor& x) {
  check_fitted(pca, "pca_transform");
  TORCH_CHECK(x.dim() == 2 && x.size(1) == pca.mean.size(0), "pca_transform: expected data of shape [N, ",
              pca.mean.size(0), "], got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "pca_transform: expected floating data, got ", x.scalar_type());
  torch::NoGradGuard no_grad;
  return (x - pca.mean.to(x.scalar_type())).matmul(pca.components.to(x.scalar_type()).t());
}

torch::Tensor pca_reconstruct(const Pca& pca, const torch::Tensor& codes) {
  check_fitted(pca, "pca_reconstruct");
  TORCH_CHECK(codes.dim() == 2 && codes.size(1) == pca.components.size(0),
              "pca_reconstruct: expected codes of shape [N, ", pca.components.size(0), "], got ", codes.sizes());
  TORCH_CHECK(at::isFloatingType(codes.scalar_type()), "pca_reconstruct: expected floating codes, got ",
              codes.scalar_type());
  torch::NoGradGuard no_grad;
  return torch::addmm(pca.mean.to(codes.scalar_type()), codes, pca.components.to(codes.scalar_type()));
}

}  // namespace matvae
