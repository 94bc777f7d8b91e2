// The fused bias and ReLU of a linear layer; see linear_relu.h.
#include "matvae/models/linear_relu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

// The row loops, once for AVX2 and once for any x86-64, chosen when the program loads.
#define MATVAE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))

namespace matvae {
namespace {

constexpr int64_t kGrainElements = 1 << 15;  // elements per parallel task, at least
constexpr int64_t kBlockRows = 64;           // rows per partial bias sum: fixed, so the sum's order is too

// ----------------------------------------------------------------------------------------------
// The two passes
// ----------------------------------------------------------------------------------------------

/// out[j] = relu(in[j] + b[j]) over one row of `cols`; `in` may be `out`. A NaN stays NaN, as in
/// ATen's relu, so that a diverging run shows in its loss.
MATVAE_VECTOR_CLONES void row_bias_relu(const float* in, const float* __restrict b, float* out, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    const float v = in[j] + b[j];
    out[j] = v < 0.0f ? 0.0f : v;
  }
}

/// Over `rows` rows: masked = g where out > 0, else 0 (ATen's threshold_backward), and sum[j] =
/// the column sums of masked, added row by row.
MATVAE_VECTOR_CLONES void block_mask_and_sum(const float* __restrict g, const float* __restrict out,
                                             float* __restrict masked, float* __restrict sum, int64_t rows,
                                             int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) sum[j] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * cols;
    const float* outr = out + r * cols;
    float* mr = masked + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = outr[j] <= 0.0f ? 0.0f : gr[j];
      mr[j] = v;
      sum[j] += v;
    }
  }
}

/// out = relu(in + bias) over [rows, cols]; in may be out.
void bias_relu_pass(const float* in, const float* bias, float* out, int64_t rows, int64_t cols) {
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(cols, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t r = begin; r < end; ++r) row_bias_relu(in + r * cols, bias, out + r * cols, cols);
                   });
}

/// The gradient through relu(h + bias), given the output `out` and its gradient `g` ([rows, cols]
/// each, contiguous): the gradient to h, and the bias's (the column sums of it), in one pass. Each
/// block of kBlockRows rows sums its columns, then the blocks are added in order.
std::pair<torch::Tensor, torch::Tensor> bias_relu_backward(const torch::Tensor& g, const torch::Tensor& out) {
  const int64_t cols = out.size(-1), rows = out.numel() / std::max<int64_t>(cols, 1);
  auto masked = torch::empty_like(out);
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<float> partial(static_cast<size_t>(std::max<int64_t>(blocks, 1) * cols));
  const float* const g_all = g.data_ptr<float>();
  const float* const out_all = out.data_ptr<float>();
  float* const m_all = masked.data_ptr<float>();
  at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(kBlockRows * cols, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t blk = begin; blk < end; ++blk) {
                       const int64_t r0 = blk * kBlockRows, n = std::min(kBlockRows, rows - r0);
                       block_mask_and_sum(g_all + r0 * cols, out_all + r0 * cols, m_all + r0 * cols,
                                          partial.data() + blk * cols, n, cols);
                     }
                   });
  auto bias_grad = torch::zeros({cols}, out.options());
  float* const bg = bias_grad.data_ptr<float>();
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t j = 0; j < cols; ++j) bg[j] += partial[static_cast<size_t>(blk * cols + j)];
  return {masked, bias_grad};
}

// ----------------------------------------------------------------------------------------------
// The autograd nodes
// ----------------------------------------------------------------------------------------------

bool cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.layout() == torch::kStrided;
}

/// relu(x W^T + b) from the product alone, with the bias and the clamp done in place on it.
torch::Tensor linear_relu_forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  auto y = torch::mm(x, weight.t());
  const auto b = bias.contiguous();
  bias_relu_pass(y.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), y.size(0), y.size(1));
  return y;
}

torch::Tensor bias_relu_forward(const torch::Tensor& h, const torch::Tensor& bias) {
  const auto hc = h.contiguous();
  const auto b = bias.contiguous();
  auto out = torch::empty_like(hc);
  const int64_t cols = b.numel();
  bias_relu_pass(hc.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(), hc.numel() / cols, cols);
  return out;
}

struct LinearRelu : torch::autograd::Function<LinearRelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    auto y = linear_relu_forward(x, weight, bias);
    ctx->save_for_backward({x, weight, y});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &y = saved[2];
    const auto [g, bias_grad] = bias_relu_backward(grad_outputs[0].contiguous(), y);
    return {ctx->needs_input_grad(0) ? torch::mm(g, weight) : torch::Tensor(),
            ctx->needs_input_grad(1) ? torch::mm(g.t(), x) : torch::Tensor(),
            ctx->needs_input_grad(2) ? bias_grad : torch::Tensor()};
  }
};

struct BiasRelu : torch::autograd::Function<BiasRelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h,
                               const torch::Tensor& bias) {
    auto out = bias_relu_forward(h, bias);
    ctx->save_for_backward({out});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto out = ctx->get_saved_variables()[0];
    auto [g, bias_grad] = bias_relu_backward(grad_outputs[0].contiguous(), out);
    return {g, ctx->needs_input_grad(1) ? bias_grad : torch::Tensor()};
  }
};

bool needs_grad(std::initializer_list<const torch::Tensor*> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto* t : ts)
    if (t->requires_grad()) return true;
  return false;
}

}  // namespace

torch::Tensor linear_relu_plain(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::relu(torch::nn::functional::linear(x, weight, bias));
}

torch::Tensor bias_relu_plain(const torch::Tensor& h, const torch::Tensor& bias) { return torch::relu(h + bias); }

torch::Tensor linear_relu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool fusable = cpu_float(x) && cpu_float(weight) && cpu_float(bias) && x.dim() == 2 && weight.dim() == 2 &&
                       bias.dim() == 1 && x.size(1) == weight.size(1) && bias.size(0) == weight.size(0);
  if (!fusable) return linear_relu_plain(x, weight, bias);  // which also names any shape mismatch
  if (!needs_grad({&x, &weight, &bias})) {
    torch::NoGradGuard no_grad;
    return linear_relu_forward(x, weight, bias);
  }
  return LinearRelu::apply(x, weight, bias);
}

torch::Tensor bias_relu(const torch::Tensor& h, const torch::Tensor& bias) {
  const bool fusable = cpu_float(h) && cpu_float(bias) && h.dim() >= 1 && bias.dim() == 1 &&
                       h.size(-1) == bias.size(0) && h.numel() > 0;
  if (!fusable) return bias_relu_plain(h, bias);
  if (!needs_grad({&h, &bias})) {
    torch::NoGradGuard no_grad;
    return bias_relu_forward(h, bias);
  }
  return BiasRelu::apply(h, bias);
}

}  // namespace matvae
