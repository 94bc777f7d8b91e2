// The fused Bernoulli cross-entropy of all prefixes; see bernoulli_prefixes.h.
//
// Per logit l and target x: loss = max(l, 0) - l x + log1p(exp(-|l|)), gradient sigmoid(l) - x,
// both from the one e = exp(-|l|): sigmoid(l) = 1 / (1 + e) for l >= 0, e / (1 + e) below. exp and
// log1p are Cephes' float polynomials written branch-free (selects, no calls), so that GCC
// vectorises the loop over a row; this file is compiled with -fno-trapping-math (CMakeLists.txt),
// without which GCC keeps the selects as branches and vectorises nothing.
#include "matvae/losses/bernoulli_prefixes.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "matvae/losses/recon.h"

#define MATVAE_ALWAYS_INLINE inline __attribute__((always_inline))
// The row loops, once for AVX2 and once for any x86-64, chosen when the program loads.
#define MATVAE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))

namespace matvae {
namespace {

constexpr int64_t kLanes = 16;            // partial sums per row, added in a fixed order
constexpr int64_t kBlock = 256;           // pixels per pass of the loss loop (a multiple of kLanes)
constexpr int64_t kGrainElements = 1 << 15;  // logits per parallel task, at least

MATVAE_ALWAYS_INLINE float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

MATVAE_ALWAYS_INLINE uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

/// exp(-a) for a >= 0, within about 2 ulp; a NaN gives NaN. a is capped at 87: exp(-87) is near
/// the smallest normal float, and what lies below only feeds terms of less than 1e-37.
MATVAE_ALWAYS_INLINE float exp_neg(float a) {
  const float x = -(a > 87.0f ? 87.0f : a);
  // n = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer kept in the low mantissa bits, which
  // give 2^n below without a float-to-int conversion.
  const float shifted = x * 1.44269504088896341f + 0x1.8p23f;
  const float n = shifted - 0x1.8p23f;
  // Cody-Waite: x - n ln 2 in two steps, the first product exact, so r is accurate in [-ln2/2, ln2/2].
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float exp_r = p * (r * r) + r + 1.0f;
  const uint32_t n_plus_bias = to_bits(shifted) - to_bits(0x1.8p23f) + 127u;  // n >= -126: a normal
  return exp_r * from_bits(n_plus_bias << 23);
}

/// log1p(e) for e in [0, 1], within about 2 ulp. Below sqrt(2) - 1 the series runs on e itself, so
/// 1 + e is never rounded (a tiny e keeps all its digits); above, log1p(e) = ln 2 + log((1 + e) / 2)
/// with (1 + e) / 2 - 1 = (e - 1) / 2.
MATVAE_ALWAYS_INLINE float log1p_unit(float e) {
  const bool upper = e > 0.414213562f;
  const float x = upper ? (e - 1.0f) * 0.5f : e;
  const float z = x * x;
  float p = 7.0376836292e-2f;
  p = p * x - 1.1514610310e-1f;
  p = p * x + 1.1676998740e-1f;
  p = p * x - 1.2420140846e-1f;
  p = p * x + 1.4249322787e-1f;
  p = p * x - 1.6668057665e-1f;
  p = p * x + 2.0000714765e-1f;
  p = p * x - 2.4999993993e-1f;
  p = p * x + 3.3333331174e-1f;
  // ln 2 in two parts (0.693359375 - 2.12194440e-4), the larger exact, as Cephes adds it.
  const float y = x * z * p + (upper ? -2.12194440e-4f : 0.0f) - 0.5f * z;
  return (x + y) + (upper ? 0.693359375f : 0.0f);
}

/// One row's loss summed over its p pixels; with `WithGrad`, d[i] = sigmoid(l[i]) - x[i] too.
template <bool WithGrad>
MATVAE_ALWAYS_INLINE float row_loss(const float* __restrict l, const float* __restrict x, float* __restrict d,
                                    int64_t p) {
  float lanes[kLanes] = {};
  float loss[kBlock];
  for (int64_t start = 0; start < p; start += kBlock) {
    const int64_t len = std::min(kBlock, p - start);
    const float* __restrict lb = l + start;
    const float* __restrict xb = x + start;
    for (int64_t i = 0; i < len; ++i) {
      const float li = lb[i];
      const float e = exp_neg(li < 0.0f ? -li : li);
      loss[i] = (li > 0.0f ? li : 0.0f) - li * xb[i] + log1p_unit(e);
      if constexpr (WithGrad) d[start + i] = (li >= 0.0f ? 1.0f : e) / (1.0f + e) - xb[i];
    }
    // Element i goes to lane i mod 16 (the block is a multiple of 16): the same order on any thread.
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
      for (int64_t j = 0; j < kLanes; ++j) lanes[j] += loss[i + j];
    for (int64_t j = 0; i + j < len; ++j) lanes[j] += loss[i + j];
  }
  for (int64_t width = kLanes / 2; width >= 1; width /= 2)
    for (int64_t j = 0; j < width; ++j) lanes[j] += lanes[j + width];
  return lanes[0];
}

MATVAE_VECTOR_CLONES float row_loss_only(const float* l, const float* x, int64_t p) {
  return row_loss<false>(l, x, nullptr, p);
}

MATVAE_VECTOR_CLONES float row_loss_and_grad(const float* l, const float* x, float* d, int64_t p) {
  return row_loss<true>(l, x, d, p);
}

/// out = d * g over one row of p.
MATVAE_VECTOR_CLONES void row_scale(const float* __restrict d, float g, float* __restrict out, int64_t p) {
  for (int64_t i = 0; i < p; ++i) out[i] = d[i] * g;
}

/// Whether the fused kernel takes these tensors (else the plain path does).
bool fusable(const torch::Tensor& logits, const torch::Tensor& x) {
  const auto plain_float = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.layout() == torch::kStrided &&
           t.is_contiguous();
  };
  return plain_float(logits) && plain_float(x) && !x.requires_grad();
}

/// The loss of every row [S * N] of logits; `d`, if defined, gets sigmoid(logits) - x.
torch::Tensor fused_forward(const torch::Tensor& logits, const torch::Tensor& x, const torch::Tensor& d) {
  const int64_t s = logits.size(0), n = logits.size(1), p = logits.size(2);
  auto loss = torch::empty({s, n}, logits.options());
  const float* const l_all = logits.data_ptr<float>();
  const float* const x_all = x.data_ptr<float>();
  float* const d_all = d.defined() ? d.data_ptr<float>() : nullptr;
  float* const loss_all = loss.data_ptr<float>();
  at::parallel_for(0, s * n, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(p, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t row = begin; row < end; ++row) {
                       const float* const l = l_all + row * p;
                       const float* const xr = x_all + (row % n) * p;
                       loss_all[row] = d_all ? row_loss_and_grad(l, xr, d_all + row * p, p) : row_loss_only(l, xr, p);
                     }
                   });
  return loss;
}

/// The autograd node: forward keeps sigmoid(l) - x, backward scales each row by its loss's gradient.
/// Keeping it costs a write of [S, N, P] forward but no second exp backward: measured 5-10% faster
/// forward and backward together than recomputing it from the saved logits (bench_recon.cpp).
struct BernoulliPrefixes : torch::autograd::Function<BernoulliPrefixes> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& x) {
    auto d = torch::empty_like(logits, torch::MemoryFormat::Contiguous);
    auto loss = fused_forward(logits, x, d);
    ctx->save_for_backward({d});
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto d = ctx->get_saved_variables()[0];
    const auto g = grad_outputs[0].to(torch::kFloat32).contiguous();
    auto grad = torch::empty_like(d);
    const int64_t rows = d.size(0) * d.size(1), p = d.size(2);
    const float* const d_all = d.data_ptr<float>();
    const float* const g_all = g.data_ptr<float>();
    float* const out_all = grad.data_ptr<float>();
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(p, 1)),
                     [&](int64_t begin, int64_t end) {
                       for (int64_t row = begin; row < end; ++row)
                         row_scale(d_all + row * p, g_all[row], out_all + row * p, p);
                     });
    return {grad, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor bernoulli_nll_prefixes_plain(const torch::Tensor& logits, const torch::Tensor& x) {
  return loss_recon_prefixes_plain(logits, x, Likelihood::kBernoulli);
}

torch::Tensor bernoulli_nll_prefixes(const torch::Tensor& logits, const torch::Tensor& x) {
  if (!fusable(logits, x)) return bernoulli_nll_prefixes_plain(logits, x);  // which checks the shapes
  check_prefix_shapes(logits, x, "bernoulli_nll_prefixes");
  if (!(torch::GradMode::is_enabled() && logits.requires_grad())) {
    torch::NoGradGuard no_grad;
    return fused_forward(logits, x, torch::Tensor());
  }
  return BernoulliPrefixes::apply(logits, x);
}

}  // namespace matvae
