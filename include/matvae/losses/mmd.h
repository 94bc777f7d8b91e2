// MMD^2 between encoder codes and prior draws (the InfoVAE / MMD-VAE divergence), with the
// Gaussian (InfoVAE) and inverse multiquadric (WAE) kernels, biased and unbiased estimators.
// loss_mmd is the plain reference path; loss_mmd_prefixes is the fast path for all Matryoshka
// prefixes at once, tested to agree with it.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "matvae/losses/choices.h"

namespace matvae {

/// The kernels (MmdKernel, choices.h) for codes of dimension d (per prefix, d = m, its own width):
/// kGaussian (the InfoVAE authors' code): k(a, b) = exp(-||a - b||^2 / d^2), i.e. the squared
///   distance averaged over the d coordinates, then divided by d again.
/// kImq (WAE): k(a, b) = C / (C + ||a - b||^2), C = 2 d sigma^2 with sigma^2 = 1 (standard normal prior).

/// Plain fields (an aggregate), like the other option structs of the library.
struct MmdOptions {
  MmdKernel kernel = MmdKernel::kGaussian;
  /// false: mean over all pairs in every term, diagonals included (as the InfoVAE code does).
  /// true: the diagonals of the within-sample terms are excluded (unbiased U-statistic).
  bool unbiased = false;
  /// 0: the kernel's default width above. > 0: an override that still scales with each prefix's
  /// own d: gaussian exp(-||a - b||^2 / (bandwidth * d)), imq C = bandwidth * d. So bandwidth = d
  /// reproduces the default gaussian only for that one d, and bandwidth = 2 the default imq for every d.
  double bandwidth = 0.0;
};

/// x: [N, d] codes, y: [M, d] prior draws -> scalar MMD^2.
/// biased:   mean_{i,j} k(x_i, x_j) + mean_{i,j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j);
/// unbiased: sum_{i != j} k(x_i, x_j) / (N (N - 1)) + sum_{i != j} k(y_i, y_j) / (M (M - 1))
///           - 2 mean over all N * M pairs of k(x_i, y_j) (the cross term keeps its "diagonal").
/// The unbiased estimate can be negative. Differentiable in x and y.
torch::Tensor loss_mmd(const torch::Tensor& x, const torch::Tensor& y, const MmdOptions& options = {});

/// x: [N, D], y: [M, D]; nesting: m_1 < ... < m_K = D -> [K], element k = loss_mmd(x[:, :m_k], y[:, :m_k]).
/// The squared distances of all N + M points are computed once per block of columns
/// [m_{k-1}, m_k) and cumulatively summed over blocks, so all K kernels cost about one loss_mmd.
/// Differentiable in x and y.
/// On CPU float32 everything after the blocks' Gram matrices is one fused pass over the pairs each
/// way (mmd_pair_sums.h); other devices and dtypes take loss_mmd_prefixes_aten.
torch::Tensor loss_mmd_prefixes(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& nesting,
                                const MmdOptions& options = {});
/// Rows [begin, begin + count) of a sample.
struct RowShare {
  int64_t begin = 0, count = 0;
};

/// One share of loss_mmd_prefixes on CPU float32, for data-parallel ranks that split the MMD's
/// work: the pair sums of rows `codes` of x and rows `draws` of y against all N + M points. In
/// value, shares that partition the rows sum to loss_mmd_prefixes (up to rounding). In gradient, the
/// whole MMD^2's with respect to x's rows in `codes` (by the pairs' symmetry, from these rows'
/// pairs alone), and 0 for every other row of x and y; so each rank gets the gradient of its own
/// codes while computing 1/ranks of the pairs.
torch::Tensor loss_mmd_prefix_share(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& nesting,
                                    const MmdOptions& options, RowShare codes, RowShare draws);
/// The same in ATen operations alone (any device and dtype): the reference the fused path is tested
/// and benchmarked against.
torch::Tensor loss_mmd_prefixes_aten(const torch::Tensor& x, const torch::Tensor& y,
                                     const std::vector<int64_t>& nesting, const MmdOptions& options = {});

/// loss_mmd's value for evaluation, where N and M run to thousands: in float64, without autograd,
/// squared distances by matrix products (three kernel matrices, [N, N], [M, M] and [N, M], through
/// loss_mmd's own kernel and estimator). loss_mmd's exact differences would be [N, M, d] tensors (1 GB for N = M = 2000,
/// d = 64). Equal to loss_mmd in float64 up to rounding.
double mmd_value(const torch::Tensor& x, const torch::Tensor& y, const MmdOptions& options = {});

}  // namespace matvae
