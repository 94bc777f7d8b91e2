// The linear probe: multinomial logistic regression on standardised features, its L2 strength
// chosen on a seeded validation part of the training set, refitted on all of it, scored on test.
// Choosing the strength (choose_l2) takes training data only, so test data cannot leak into it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace matvae {

/// Plain fields (an aggregate), like the other option structs of the library.
struct ProbeOptions {
  /// L2 strengths lambda tried; the objective is mean cross-entropy + lambda / 2 * ||W||^2 (weights,
  /// not biases) on standardised features. Mean-loss strengths: 1e-5 is about 1 / N for N = 60000
  /// (almost unregularised at MNIST size), 1e-1 shrinks weights hard; the grid spans the two.
  std::vector<double> grid = {1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
  /// The share of the training rows held out to choose lambda (at least one row each side).
  double validation_fraction = 0.1;
  /// Seeds the train/validation split (nothing else is random).
  uint64_t seed = 0;
  /// L-BFGS iterations per fit at most (each fit also stops when the gradient or loss settles).
  int64_t max_iter = 500;
};

/// A fitted probe. Features are standardised with the statistics of its own training rows.
struct ProbeModel {
  torch::Tensor mean;      // [m] float64: training feature means
  torch::Tensor scale;     // [m] float64: training feature standard deviations (1/N), 1 for constant features
  torch::Tensor weight;    // [m, C] float32 (the fit's dtype)
  torch::Tensor bias;      // [C] float32
  int64_t iterations = 0;  // L-BFGS iterations this fit took
};

/// The outcome of choosing lambda on a validation part of the training set.
struct L2Choice {
  double chosen_l2 = 0;
  std::vector<double> grid;                 // options.grid, in its order
  std::vector<double> validation_accuracy;  // one per grid value
  int64_t iterations = 0;                   // L-BFGS iterations summed over the grid
  ProbeModel model;                         // the fit at chosen_l2 (on the 90 % part), a warm start
};

struct ProbeResult {
  double test_accuracy = 0;
  double train_accuracy = 0;  // of the final fit, on all training rows
  double chosen_l2 = 0;
  std::vector<double> grid;                 // options.grid, in its order
  std::vector<double> validation_accuracy;  // one per grid value
  int64_t iterations = 0;                   // L-BFGS iterations of the final fit on all training rows
  int64_t selection_iterations = 0;         // L-BFGS iterations summed over the grid while choosing
  ProbeModel model;                         // the final fit, on all training rows
  ProbeModel validation_model;              // the fit at chosen_l2 on the training rows probe_split keeps
};

/// The fit's objective on fixed (already standardised) data, laid out for speed: classes on the
/// outer axis of the logits, [C, N]. Built once per fit by probe_objective.
struct ProbeObjective {
  torch::Tensor x;         // [N, m] float32
  torch::Tensor xt;        // [m, N] float32, x transposed
  torch::Tensor onehot_t;  // [C, N] float32, one-hot labels transposed
  double l2 = 0;
};
ProbeObjective probe_objective(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, double l2);

/// Mean cross-entropy + l2 / 2 * ||W||^2 and its gradient, written out (no autograd): the fit calls
/// it once per L-BFGS function evaluation. weight_t: [C, m] (W transposed), bias: [C].
struct ProbeLoss {
  double value = 0;
  torch::Tensor grad_weight_t;  // [C, m]
  torch::Tensor grad_bias;      // [C]
};
ProbeLoss probe_loss(const ProbeObjective& objective, const torch::Tensor& weight_t, const torch::Tensor& bias);

/// x: [N, m] features (any floating dtype), y: [N] int64 labels in [0, num_classes).
/// Fits mean cross-entropy + l2 / 2 * ||W||^2 on standardised x with full-batch L-BFGS (strong-Wolfe
/// line search, float32), starting from `warm_start` (its weight and bias) or from zeros.
ProbeModel fit_probe(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, double l2,
                     int64_t max_iter = 500, const ProbeModel* warm_start = nullptr);

/// x: [N, m] -> [N, C] float32 logits, x standardised with the model's own training statistics.
torch::Tensor probe_logits(const ProbeModel& model, const torch::Tensor& x);

/// x: [N, m] -> [N] int64 predicted classes (a tie in the logits goes to the lower class).
torch::Tensor probe_predict(const ProbeModel& model, const torch::Tensor& x);

/// The indices of the training rows held out for validation and of those fitted: a seeded random
/// permutation of 0..N-1 split into [round(fraction * N)] validation and the rest (each >= 1 row).
struct ProbeSplit {
  torch::Tensor fit;         // [N - V] int64, ascending
  torch::Tensor validation;  // [V] int64, ascending
};
ProbeSplit probe_split(int64_t n, double validation_fraction, uint64_t seed);

/// Chooses lambda from options.grid by validation accuracy on the split above; training data only.
/// train_x: [N, m], train_y: [N] int64. Fits go from the largest lambda to the smallest, each warm-
/// started from the last. The highest validation accuracy wins; a tie goes to the larger lambda.
L2Choice choose_l2(const torch::Tensor& train_x, const torch::Tensor& train_y, int64_t num_classes,
                   const ProbeOptions& options = {});

/// train_x: [N, m], train_y: [N] int64, test_x: [T, m], test_y: [T] int64, labels in [0, num_classes).
/// choose_l2 on the training data, a refit on all training rows at the chosen lambda, then, and only
/// then, test accuracy. Works under torch::NoGradGuard (it turns gradients on for its own fits).
ProbeResult linear_probe(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                         const torch::Tensor& test_y, int64_t num_classes, const ProbeOptions& options = {});

}  // namespace matvae
