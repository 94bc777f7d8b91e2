// The losses' typed choices: the reconstruction likelihood, the MMD kernel and its estimator.
// Free of LibTorch, so that the run settings (and their fuzzer) parse them with the losses' own
// names and messages; the formulas live in recon.h and mmd.h.
#pragma once

#include <string>

namespace matvae {

/// How an image is scored against the decoder's per-pixel logits.
enum class Likelihood {
  kBernoulli,  // binary cross-entropy with logits on intensities in [0, 1], summed over pixels
  kGaussian,   // squared error of sigmoid(logits), summed over pixels (not a normalised log-likelihood)
  kNormal,     // x ~ N(output, I): the NLL of any real features in nats, the decoder output as the mean
};

/// Kernels for codes of dimension d (per prefix, d = m, its own width); see mmd.h.
enum class MmdKernel { kGaussian, kImq };

/// kBiased: every pair in every term, diagonals included (as the InfoVAE code does).
/// kUnbiased: the diagonals of the within-sample terms excluded (a U-statistic).
enum class MmdEstimator { kBiased, kUnbiased };

/// Each parse_* takes the value's name and throws UsageError naming anything else.
Likelihood parse_likelihood(const std::string& name);
std::string to_string(Likelihood likelihood);
MmdKernel parse_mmd_kernel(const std::string& name);
std::string to_string(MmdKernel kernel);
MmdEstimator parse_mmd_estimator(const std::string& name);
std::string to_string(MmdEstimator estimator);

}  // namespace matvae
