// The reparameterisation z = mu + eps * exp(logvar / 2) in one pass each way.
//
// Through ATen it is four elementwise operations forward (the halving, exp, the product, the sum),
// each a pass and a buffer, and as many autograd nodes backward. reparameterize computes z in one
// pass and keeps eps * exp(logvar / 2), from which the gradient to logvar is one more pass; the
// gradient to mu is the incoming one itself. It matches reparameterize_plain to float rounding
// (tests/test_reparameterize.cpp).
#pragma once

#include <torch/torch.h>

namespace matvae {

/// mu, logvar, eps: [N, D] -> z = mu + eps * exp(logvar / 2). Differentiable in mu and logvar (eps
/// is a draw: no gradient). The fused kernel runs when all three are CPU float32 of one shape;
/// anything else takes reparameterize_plain.
torch::Tensor reparameterize(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps);

/// The plain ATen path the fused one is tested against.
torch::Tensor reparameterize_plain(const torch::Tensor& mu, const torch::Tensor& logvar, const torch::Tensor& eps);

}  // namespace matvae
