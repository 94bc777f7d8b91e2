// A linear layer followed by a ReLU, with the bias and the ReLU done in one pass each way.
//
// Through ATen, relu(linear(x, W, b)) is addmm (the bias copied into the output, then the product
// added to it), relu (a read and a write of the output), and backward threshold_backward (two reads,
// a write) then a column sum for the bias (another read). linear_relu takes the product alone from
// the BLAS and adds the bias and clamps in the same pass over its output; backward, one pass masks
// the gradient and sums its columns for the bias. bias_relu is that pass for a pre-activation that
// was computed some other way (the tied decoder's first layer: block products and a cumulative sum).
// Both match their plain paths to float rounding (tests/test_linear_relu.cpp).
#pragma once

#include <torch/torch.h>

namespace matvae {

/// relu(x W^T + b): x [N, I], weight [O, I], bias [O] -> [N, O]. Differentiable in all three.
/// The fused kernel runs for CPU float32 contiguous tensors; anything else takes linear_relu_plain.
/// The bias's gradient is summed over fixed blocks of rows in a fixed order, so the result does not
/// depend on the number of threads.
torch::Tensor linear_relu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

/// relu(h + b): h [..., O], bias [O] -> h's shape. Differentiable in both; the same fused pass and
/// the same fallback as linear_relu.
torch::Tensor bias_relu(const torch::Tensor& h, const torch::Tensor& bias);

/// The plain ATen paths the fused ones are tested against: relu(linear(x, weight, bias)), relu(h + bias).
torch::Tensor linear_relu_plain(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor bias_relu_plain(const torch::Tensor& h, const torch::Tensor& bias);

}  // namespace matvae
