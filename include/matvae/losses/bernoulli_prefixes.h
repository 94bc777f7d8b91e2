// The Bernoulli reconstruction loss of every decoded prefix in one pass, with its gradient.
//
// A training step's reconstruction term is binary cross-entropy with logits over [S, N, P] logits
// (S prefixes of N images of P pixels) against the same [N, P] images for every prefix. Through
// ATen that is about eight passes over [S, N, P] forward and backward (the expanded target, the
// loss's terms, the pixel sum, sigmoid and the gradient's products), which at batch 256 cost more
// than the decoder's matrix products. bernoulli_nll_prefixes reads each logit once forward, with
// the loss summed per row as it goes, and writes each gradient once backward. Its values match
// bernoulli_nll_prefixes_plain to float rounding (tests/test_bernoulli_prefixes.cpp).
#pragma once

#include <torch/torch.h>

namespace matvae {

/// logits: [S, N, P], x: [N, P] intensities in [0, 1] -> [S, N]: element (s, n) is
/// -sum_p x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)) over the P pixels of logits[s, n], in
/// nats; the same values as loss_recon(..., Likelihood::kBernoulli) of each prefix's rows.
/// Differentiable in logits (once: the gradient is not itself differentiable).
/// The fused kernel runs for CPU float32 contiguous tensors with an x that needs no gradient; any
/// other input takes bernoulli_nll_prefixes_plain. Each row is summed by one thread in a fixed
/// order, so the result does not depend on the number of threads.
torch::Tensor bernoulli_nll_prefixes(const torch::Tensor& logits, const torch::Tensor& x);

/// The same through ATen's binary_cross_entropy_with_logits over x expanded to [S * N, P]: the
/// reference the fused kernel is tested against, for every dtype and device.
torch::Tensor bernoulli_nll_prefixes_plain(const torch::Tensor& logits, const torch::Tensor& x);

}  // namespace matvae
