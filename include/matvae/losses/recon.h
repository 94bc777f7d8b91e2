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

/// The decoder's mean output from its logits: sigmoid for intensities, the logits for kNormal.
torch::Tensor output_mean(const torch::Tensor& logits, Likelihood likelihood);

}  // namespace matvae
