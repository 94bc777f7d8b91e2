// Adaptive classification with a Matryoshka code: linear probes at every prefix size, applied in
// order of size until one is confident enough (its largest class probability at least a threshold),
// so that an easy image is classified from a few dimensions and a hard one from all of them. The
// threshold is chosen on validation rows of train, never on test; reported as test accuracy against
// the expected number of dimensions, as MRL reports its adaptive classification.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "matvae/eval/linear_probe.h"

namespace matvae {

/// Where a cascade of per-prefix probabilities stops: probs[k] is [T, C] (prefix k of the nesting
/// list), the first k whose largest probability is >= threshold, the last prefix otherwise. Returns
/// the predicted classes [T] and the prefix index used [T].
struct CascadeDecision {
  torch::Tensor predictions;  // [T] int64
  torch::Tensor stopped_at;   // [T] int64, indices into the nesting list
};
CascadeDecision cascade_decide(const std::vector<torch::Tensor>& probs, double threshold);

struct CascadePoint {
  double threshold = 0;
  double validation_accuracy = 0, validation_dims = 0;
  double test_accuracy = 0, test_dims = 0;  // expected dimensions: the mean m used per image
};

struct CascadeResult {
  std::vector<CascadePoint> points;  // one per threshold of the grid
  double full_validation_accuracy = 0, full_test_accuracy = 0;  // the probe of the whole code
  /// The chosen point: the smallest expected validation dimensions whose validation accuracy is at
  /// least the full code's (or, if none is, the most accurate); -1 if the grid is empty.
  int64_t chosen = -1;
};

/// The thresholds scored by default.
inline const std::vector<double> kCascadeThresholds = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999};

/// train_x: [N, D], test_x: [T, D] codes; the probes are linear_probe's (L2 chosen on its validation
/// rows of train, with `seed`), at each m of `nesting`; the thresholds are scored on those validation
/// rows with the probes fitted without them, and on test with the final probes.
CascadeResult adaptive_classification(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const torch::Tensor& test_y,
                                      const std::vector<int64_t>& nesting, int64_t num_classes, uint64_t seed,
                                      const std::vector<double>& thresholds = kCascadeThresholds);

/// The same from probes already fitted, probes[i] at nesting[i] by linear_probe with `seed` on these
/// codes (as the per-prefix evaluation fits them): the cascade without fitting them again.
CascadeResult adaptive_classification(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const torch::Tensor& test_y,
                                      const std::vector<int64_t>& nesting, const std::vector<const ProbeResult*>& probes,
                                      uint64_t seed, const std::vector<double>& thresholds = kCascadeThresholds);

}  // namespace matvae
