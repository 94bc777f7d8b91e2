// MMD^2 estimators: the plain reference path (one pair of samples) and the fast path for all
// Matryoshka prefixes (per-block squared distances, cumulatively summed over blocks).
#include "matvae/losses/mmd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "matvae/losses/mmd_pair_sums.h"

namespace matvae {

namespace {

void check_samples(const torch::Tensor& x, const torch::Tensor& y, const MmdOptions& options, const char* fn) {
  TORCH_CHECK(x.dim() == 2, fn, ": expected codes x of shape [N, d], got ", x.sizes());
  TORCH_CHECK(y.dim() == 2, fn, ": expected prior draws y of shape [M, d], got ", y.sizes());
  TORCH_CHECK(x.size(1) == y.size(1), fn, ": expected x and y with the same number of columns, got x ", x.sizes(),
              " and y ", y.sizes());
  TORCH_CHECK(x.size(1) >= 1, fn, ": expected at least one column, got x ", x.sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), fn, ": expected x and y of the same dtype, got ",
              x.scalar_type(), " and ", y.scalar_type());
  const int64_t min_rows = options.unbiased ? 2 : 1;
  TORCH_CHECK(x.size(0) >= min_rows && y.size(0) >= min_rows, fn, ": the ",
              options.unbiased ? "unbiased" : "biased", " estimator needs at least ", min_rows,
              " rows in each sample, got x ", x.sizes(), " and y ", y.sizes());
  TORCH_CHECK(std::isfinite(options.bandwidth) && options.bandwidth >= 0.0, fn,
              ": expected a bandwidth >= 0 (0 = the kernel's default), got ", options.bandwidth);
}

void check_nesting(const std::vector<int64_t>& nesting, int64_t d, const char* fn) {
  TORCH_CHECK(!nesting.empty(), fn, ": expected a non-empty nesting list ending at D = ", d);
  TORCH_CHECK(nesting.front() >= 1, fn, ": expected nesting values >= 1, got ", c10::IntArrayRef(nesting));
  for (size_t k = 1; k < nesting.size(); ++k) {
    TORCH_CHECK(nesting[k] > nesting[k - 1], fn, ": expected a strictly increasing nesting list, got ",
                c10::IntArrayRef(nesting));
  }
  TORCH_CHECK(nesting.back() == d, fn, ": expected the last nesting value to equal D = ", d, ", got ",
              c10::IntArrayRef(nesting));
}

/// The kernel's width parameter for codes of dimension d: the divisor of ||a - b||^2 (gaussian) or C (imq).
double kernel_scale(const MmdOptions& options, int64_t d) {
  const double dd = static_cast<double>(d);
  if (options.bandwidth > 0.0) return options.bandwidth * dd;
  switch (options.kernel) {
    case MmdKernel::kGaussian:
      return dd * dd;
    case MmdKernel::kImq:
      return 2.0 * dd;  // C = 2 d sigma^2, sigma^2 = 1
  }
  TORCH_INTERNAL_ASSERT(false, "unhandled MmdKernel ", static_cast<int>(options.kernel));
}

/// Kernel values from squared distances. `scale` is a double or a tensor broadcastable to d2.
template <typename Scale>
torch::Tensor apply_kernel(const torch::Tensor& d2, const Scale& scale, MmdKernel kernel) {
  switch (kernel) {
    case MmdKernel::kGaussian:
      return torch::exp(-d2 / scale);
    case MmdKernel::kImq:
      return scale / (scale + d2);
  }
  TORCH_INTERNAL_ASSERT(false, "unhandled MmdKernel ", static_cast<int>(kernel));
}

/// kxx: [..., N, N], kyy: [..., M, M], kxy: [..., N, M] -> [...] MMD^2 estimates.
torch::Tensor estimate(const torch::Tensor& kxx, const torch::Tensor& kyy, const torch::Tensor& kxy, bool unbiased) {
  const auto cross = kxy.mean({-2, -1});
  if (!unbiased) return kxx.mean({-2, -1}) + kyy.mean({-2, -1}) - 2.0 * cross;
  const double n = static_cast<double>(kxx.size(-1));
  const double m = static_cast<double>(kyy.size(-1));
  // Subtract the actual diagonal rather than assuming k(a, a) = 1: in the fast path the diagonal
  // distances carry rounding error.
  const auto xx = (kxx.sum({-2, -1}) - kxx.diagonal(0, -2, -1).sum(-1)) / (n * (n - 1.0));
  const auto yy = (kyy.sum({-2, -1}) - kyy.diagonal(0, -2, -1).sum(-1)) / (m * (m - 1.0));
  return xx + yy - 2.0 * cross;
}

/// a: [A, d], b: [B, d] -> [A, B] exact squared distances (broadcast differences; no cancellation).
torch::Tensor sq_dist(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(2);
}

/// The blocks' side of one pair problem: rows `rows` of the pair matrix (all of z, or a rank's
/// share) against all T points z. sq [K, T]: every point's squared norm per block; gram [K, R, T]:
/// the rows' Gram matrices with every point; kernel [K, R, T]: for the forward pass to fill.
struct PairBlocks {
  torch::Tensor sq, gram, kernel;
};

PairBlocks pair_blocks(const torch::Tensor& z, const torch::Tensor& rows, const std::vector<int64_t>& nesting) {
  const int64_t T = z.size(0), R = rows.size(0), K = static_cast<int64_t>(nesting.size());
  const auto f32 = z.options().dtype(torch::kFloat32);
  PairBlocks b{torch::empty({K, T}, f32), torch::empty({K, R, T}, f32), torch::empty({K, R, T}, f32)};
  int64_t start = 0;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t width = nesting[k] - start;
    auto sq_k = b.sq[k], gram_k = b.gram[k];
    at::sum_out(sq_k, z.narrow(1, start, width).square(), {1});
    at::mm_out(gram_k, rows.narrow(1, start, width), z.narrow(1, start, width).t());
    start = nesting[k];
  }
  return b;
}

/// The estimator's settings, kept in the autograd context from the forward pass to the backward.
void save_settings(torch::autograd::AutogradContext* ctx, int64_t codes, const std::vector<int64_t>& nesting,
                   const std::vector<double>& scales, bool imq, bool unbiased) {
  ctx->saved_data["codes"] = codes;
  ctx->saved_data["nesting"] = nesting;
  ctx->saved_data["scales"] = scales;
  ctx->saved_data["imq"] = imq;
  ctx->saved_data["unbiased"] = unbiased;
}

/// The pair problem of blocks `b` under the settings in `ctx`; `scale` keeps the floats it points at.
MmdPairs pairs_of(torch::autograd::AutogradContext* ctx, const PairBlocks& b, std::vector<float>& scale) {
  const auto scales = ctx->saved_data["scales"].toDoubleVector();
  scale.assign(scales.begin(), scales.end());
  return MmdPairs{b.sq.size(1),
                  ctx->saved_data["codes"].toInt(),
                  b.sq.size(0),
                  ctx->saved_data["imq"].toBool(),
                  ctx->saved_data["unbiased"].toBool(),
                  scale.data(),
                  b.sq.data_ptr<float>(),
                  b.gram.size(1),
                  b.gram.data_ptr<float>(),
                  b.kernel.data_ptr<float>()};
}

/// Every prefix's sum over the rows of `row_sums` [R, K], in row order (a fixed order: the same on
/// any thread count), as float32 [K].
torch::Tensor sum_rows(const std::vector<double>& row_sums, int64_t K) {
  std::vector<double> total(static_cast<size_t>(K), 0.0);
  for (size_t i = 0; i < row_sums.size(); i += static_cast<size_t>(K))
    for (int64_t k = 0; k < K; ++k) total[k] += row_sums[i + k];
  return torch::tensor(total, torch::TensorOptions().dtype(torch::kFloat64)).to(torch::kFloat32);
}

/// loss_mmd_prefixes on CPU float32: the blocks' Gram matrices by the BLAS, everything elementwise
/// in one pass over the pairs each way (mmd_pair_sums.h). z = [x; y], the codes first.
class MmdPrefixSums : public torch::autograd::Function<MmdPrefixSums> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z, int64_t codes,
                               const std::vector<int64_t>& nesting, const std::vector<double>& scales, bool imq,
                               bool unbiased) {
    const int64_t T = z.size(0), K = static_cast<int64_t>(nesting.size());
    save_settings(ctx, codes, nesting, scales, imq, unbiased);
    const PairBlocks b = pair_blocks(z, z, nesting);
    std::vector<float> scale;
    const MmdPairs pairs = pairs_of(ctx, b, scale);
    std::vector<double> row_sums(static_cast<size_t>(T * K));
    at::parallel_for(0, T, 16, [&](int64_t begin, int64_t end) {
      mmd_pair_rows_forward(pairs, begin, end, begin, row_sums.data());
    });
    ctx->save_for_backward({z, b.sq, b.gram, b.kernel});
    return sum_rows(row_sums, K);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& z = saved[0];
    const PairBlocks b{saved[1], saved[2], saved[3]};
    const auto nesting = ctx->saved_data["nesting"].toIntVector();
    const int64_t T = z.size(0), K = static_cast<int64_t>(nesting.size());
    std::vector<float> scale;
    const MmdPairs pairs = pairs_of(ctx, b, scale);
    const auto grad = grads[0].to(torch::kFloat32).contiguous();
    auto dblock = torch::empty({K, T, T}, z.options());
    at::parallel_for(0, T, 16, [&](int64_t begin, int64_t end) {
      mmd_pair_rows_backward(pairs, grad.data_ptr<float>(), begin, end, begin, dblock.data_ptr<float>());
    });
    // d2_b(i, j) = |z_b,i|^2 + |z_b,j|^2 - 2 z_b,i . z_b,j, so with S = G + G^T of the block's
    // gradient G: dL/dz_b = 2 (S 1) * z_b - 2 S z_b.
    auto dz = torch::empty_like(z);
    int64_t start = 0;
    for (int64_t k = 0; k < K; ++k) {
      const auto zb = z.narrow(1, start, nesting[k] - start);
      const auto s = dblock[k] + dblock[k].t();
      dz.narrow(1, start, nesting[k] - start).copy_(2.0 * (s.sum(1, true) * zb - s.mm(zb)));
      start = nesting[k];
    }
    return {dz, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

/// loss_mmd_prefix_share on CPU float32: MmdPrefixSums over the share's rows of the pair matrix
/// only. The rows kept are the share's codes, then its draws: stored row a is code row
/// code_begin + a for a < code_count, else draw row n + draw_begin + (a - code_count).
class MmdPrefixShare : public torch::autograd::Function<MmdPrefixShare> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z, int64_t codes,
                               const std::vector<int64_t>& nesting, const std::vector<double>& scales, bool imq,
                               bool unbiased, int64_t code_begin, int64_t code_count, int64_t draw_begin,
                               int64_t draw_count) {
    const int64_t K = static_cast<int64_t>(nesting.size()), R = code_count + draw_count;
    save_settings(ctx, codes, nesting, scales, imq, unbiased);
    ctx->saved_data["code_begin"] = code_begin;
    ctx->saved_data["code_count"] = code_count;
    const auto kept = torch::cat({z.narrow(0, code_begin, code_count), z.narrow(0, codes + draw_begin, draw_count)});
    const PairBlocks b = pair_blocks(z, kept, nesting);
    std::vector<float> scale;
    const MmdPairs pairs = pairs_of(ctx, b, scale);
    std::vector<double> row_sums(static_cast<size_t>(R * K));
    at::parallel_for(0, R, 16, [&](int64_t begin, int64_t end) {
      const int64_t split = std::clamp(code_count, begin, end);  // the chunk's codes, then its draws
      mmd_pair_rows_forward(pairs, code_begin + begin, code_begin + split, begin, row_sums.data());
      const int64_t draw0 = codes + draw_begin - code_count;  // pair row of stored row a >= code_count
      mmd_pair_rows_forward(pairs, draw0 + split, draw0 + end, split, row_sums.data());
    });
    ctx->save_for_backward({z, kept, b.sq, b.gram, b.kernel});
    return sum_rows(row_sums, K);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &z = saved[0], &kept = saved[1];
    const PairBlocks b{saved[2], saved[3], saved[4]};
    const auto nesting = ctx->saved_data["nesting"].toIntVector();
    const int64_t T = z.size(0), K = static_cast<int64_t>(nesting.size()), R = kept.size(0);
    const int64_t code_begin = ctx->saved_data["code_begin"].toInt(), code_count = ctx->saved_data["code_count"].toInt();
    std::vector<float> scale;
    const MmdPairs pairs = pairs_of(ctx, b, scale);
    const auto grad = grads[0].to(torch::kFloat32).contiguous();
    // Only the codes' rows: the draws take no gradient. dblock's draw rows stay unwritten and unread.
    auto dblock = torch::empty({K, R, T}, z.options());
    at::parallel_for(0, code_count, 16, [&](int64_t begin, int64_t end) {
      mmd_pair_rows_backward(pairs, grad.data_ptr<float>(), code_begin + begin, code_begin + end, begin,
                             dblock.data_ptr<float>());
    });
    // The pairs are symmetric (k(i, j) = k(j, i), with equal weights), so dL/dd2(j, i) = dL/dd2(i, j)
    // = G(i, j), and MmdPrefixSums's S = G + G^T is 2 G on these rows: dL/dz_b,i = 4 (G 1)_i z_b,i
    // - 4 (G z_b)_i, from the rows of G that this share holds.
    auto dz = torch::zeros_like(z);
    int64_t start = 0;
    for (int64_t k = 0; k < K; ++k) {
      const auto zb = z.narrow(1, start, nesting[k] - start);
      const auto g = dblock[k].narrow(0, 0, code_count);
      dz.narrow(0, code_begin, code_count)
          .narrow(1, start, nesting[k] - start)
          .copy_(4.0 * (g.sum(1, true) * kept.narrow(0, 0, code_count).narrow(1, start, nesting[k] - start) - g.mm(zb)));
      start = nesting[k];
    }
    std::vector<torch::Tensor> out(10);  // one per input of forward
    out[0] = dz;
    return out;
  }
};

}  // namespace

torch::Tensor loss_mmd(const torch::Tensor& x, const torch::Tensor& y, const MmdOptions& options) {
  check_samples(x, y, options, "loss_mmd");
  const double scale = kernel_scale(options, x.size(1));
  const auto kxx = apply_kernel(sq_dist(x, x), scale, options.kernel);
  const auto kyy = apply_kernel(sq_dist(y, y), scale, options.kernel);
  const auto kxy = apply_kernel(sq_dist(x, y), scale, options.kernel);
  return estimate(kxx, kyy, kxy, options.unbiased);
}

torch::Tensor loss_mmd_prefixes(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& nesting,
                                const MmdOptions& options) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32) return loss_mmd_prefixes_aten(x, y, nesting, options);
  check_samples(x, y, options, "loss_mmd_prefixes");
  check_nesting(nesting, x.size(1), "loss_mmd_prefixes");
  // All N + M points in one matrix, so each block's Gram matrix is one matmul.
  const int64_t n = x.size(0);
  const auto z = torch::cat({x, y}, 0);  // [N + M, D]
  std::vector<double> scales;
  for (const int64_t end : nesting) scales.push_back(kernel_scale(options, end));
  return MmdPrefixSums::apply(z.contiguous(), n, nesting, scales, options.kernel == MmdKernel::kImq, options.unbiased);
}

torch::Tensor loss_mmd_prefix_share(const torch::Tensor& x, const torch::Tensor& y, const std::vector<int64_t>& nesting,
                                    const MmdOptions& options, RowShare codes, RowShare draws) {
  check_samples(x, y, options, "loss_mmd_prefix_share");
  check_nesting(nesting, x.size(1), "loss_mmd_prefix_share");
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32,
              "loss_mmd_prefix_share: CPU float32 codes only, got ", x.device(), " ", x.scalar_type());
  TORCH_CHECK(codes.begin >= 0 && codes.count >= 0 && codes.begin + codes.count <= x.size(0), "loss_mmd_prefix_share: ",
              "code rows [", codes.begin, ", +", codes.count, ") outside the ", x.size(0), " codes");
  TORCH_CHECK(draws.begin >= 0 && draws.count >= 0 && draws.begin + draws.count <= y.size(0), "loss_mmd_prefix_share: ",
              "draw rows [", draws.begin, ", +", draws.count, ") outside the ", y.size(0), " draws");
  const auto z = torch::cat({x, y}, 0);  // [N + M, D]
  std::vector<double> scales;
  for (const int64_t end : nesting) scales.push_back(kernel_scale(options, end));
  return MmdPrefixShare::apply(z.contiguous(), x.size(0), nesting, scales, options.kernel == MmdKernel::kImq,
                               options.unbiased, codes.begin, codes.count, draws.begin, draws.count);
}

torch::Tensor loss_mmd_prefixes_aten(const torch::Tensor& x, const torch::Tensor& y,
                                     const std::vector<int64_t>& nesting, const MmdOptions& options) {
  check_samples(x, y, options, "loss_mmd_prefixes");
  check_nesting(nesting, x.size(1), "loss_mmd_prefixes");
  const int64_t n = x.size(0), m = y.size(0), k_count = static_cast<int64_t>(nesting.size());
  // All N + M points in one matrix, so each block's distances are one matmul.
  const auto z = torch::cat({x, y}, 0);  // [N + M, D]
  std::vector<torch::Tensor> blocks;
  blocks.reserve(nesting.size());
  std::vector<double> scales;
  scales.reserve(nesting.size());
  int64_t start = 0;
  for (const int64_t end : nesting) {
    const auto zb = z.narrow(1, start, end - start);  // [N + M, m_k - m_{k-1}]
    const auto sq = zb.square().sum(1);               // [N + M]
    // ||a||^2 + ||b||^2 - 2 a.b can dip just below 0 by rounding; a distance cannot.
    blocks.push_back((sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * zb.matmul(zb.t())).clamp_min(0.0));
    scales.push_back(kernel_scale(options, end));
    start = end;
  }
  const auto d2 = torch::stack(blocks).cumsum(0);  // [K, N + M, N + M]: prefix k's squared distances
  const auto scale = torch::tensor(scales, torch::TensorOptions().dtype(torch::kFloat64))
                         .to(d2.device(), d2.scalar_type())
                         .view({k_count, 1, 1});
  const auto kern = apply_kernel(d2, scale, options.kernel);
  const auto kxx = kern.narrow(1, 0, n).narrow(2, 0, n);
  const auto kyy = kern.narrow(1, n, m).narrow(2, n, m);
  const auto kxy = kern.narrow(1, 0, n).narrow(2, n, m);
  return estimate(kxx, kyy, kxy, options.unbiased);  // [K]
}

double mmd_value(const torch::Tensor& x, const torch::Tensor& y, const MmdOptions& options) {
  check_samples(x, y, options, "mmd_value");
  torch::NoGradGuard no_grad;
  const double scale = kernel_scale(options, x.size(1));
  const auto a = x.detach().to(torch::kFloat64), b = y.detach().to(torch::kFloat64);
  // One kernel matrix per pair of samples, from squared distances taken by a matrix product.
  const auto kernel = [&](const torch::Tensor& p, const torch::Tensor& q) {
    auto d2 = torch::addmm(p.square().sum(1, true), p, q.t(), /*beta=*/1, /*alpha=*/-2);  // [P, Q]
    return apply_kernel(d2.add_(q.square().sum(1).unsqueeze(0)).clamp_min_(0.0), scale, options.kernel);
  };
  return estimate(kernel(a, a), kernel(b, b), kernel(a, b), options.unbiased).item<double>();
}

}  // namespace matvae
