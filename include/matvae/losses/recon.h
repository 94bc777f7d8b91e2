// The reconstruction term: per-image loss of pixel intensities x in [0, 1] given decoder logits.
// Bernoulli is a true negative log-likelihood in nats; Gaussian is the plain squared error.
#pragma once

#include <torch/torch.h>

#include "matvae/losses/choices.h"

namespace matvae {

/// logits, x: [N, P] -> [N], summed over pixels.
/// kBernoulli: binary cross-entropy with logits, -sum(x log p + (1 - x) log(1 - p)), p = sigmoid(logits),
///   computed stably from the logits (no log of a saturated sigmoid).
/// kGaussian: sum of (x - sigmoid(logits))^2. This is a squared error, not a normalised Gaussian
///   log-likelihood: it equals the NLL with variance 1/2 only up to an additive constant, so its
///   values are not nats and are not comparable with the Bernoulli ones.
/// kNormal: the negative log-likelihood of x under N(logits, I), in nats: for features of any sign.
torch::Tensor loss_recon(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood);

/// logits: [S, N, P], the S decoded prefixes of the same N images, x: [N, P] -> [S, N]: element
/// (s, n) is loss_recon of logits[s, n] against x[n]. What every caller of the prefixes' losses
/// uses: Bernoulli takes the fused kernel (bernoulli_prefixes.h, itself falling back to the plain
/// path for what it does not cover), the other likelihoods loss_recon_prefixes_plain.
torch::Tensor loss_recon_prefixes(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood);

/// The same by loss_recon over x expanded to [S * N, P]: the reference path, for any likelihood.
torch::Tensor loss_recon_prefixes_plain(const torch::Tensor& logits, const torch::Tensor& x, Likelihood likelihood);

/// Throws c10::Error naming `fn` unless logits is [S, N, P] and x is [N, P]: the shapes every
/// prefixes' loss takes.
void check_prefix_shapes(const torch::Tensor& logits, const torch::Tensor& x, const char* fn);

/// The decoder's mean output from its logits: sigmoid for intensities, the logits for kNormal.
torch::Tensor output_mean(const torch::Tensor& logits, Likelihood likelihood);

}  // namespace matvae
