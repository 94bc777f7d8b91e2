// PCA fitted on training data: the linear baseline on pixels and MRL's "SVD" baseline on the codes
// of a model trained without MRL. Covariance in float64, then a symmetric eigendecomposition.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace matvae {

/// P input features, k components. The tensors are float64; a prefix of components (with the same
/// prefix of explained_variance) is itself the PCA with fewer components.
struct Pca {
  torch::Tensor mean;                // [P] training mean
  torch::Tensor components;          // [k, P] orthonormal rows, by decreasing variance; each row's
                                     // largest-magnitude entry is positive (the first such, on ties)
  torch::Tensor explained_variance;  // [k] descending: the variance (1/N) of the data along each row
  double total_variance = 0;         // the sum of all P feature variances (1/N)
};

/// x: [N, P] floating, k in [1, P]. Covariance (x - mean)^T (x - mean) / N, accumulated in float64 over
/// blocks of rows, then torch::linalg_eigh. With the 1/N normalisation the mean over the N rows of
/// ||x - pca_reconstruct(pca_transform(x))||^2 equals total_variance - explained_variance.sum().
Pca fit_pca(const torch::Tensor& x, int64_t k);

/// x: [N, P] -> [N, k] codes (x - mean) C^T, in x's dtype.
torch::Tensor pca_transform(const Pca& pca, const torch::Tensor& x);

/// codes: [N, k] -> [N, P] codes C + mean, in codes' dtype. (For fewer components, narrow
/// components and explained_variance to a prefix first.)
torch::Tensor pca_reconstruct(const Pca& pca, const torch::Tensor& codes);

}  // namespace matvae
