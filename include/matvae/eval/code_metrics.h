// Evaluating codes: embeddings with mu(x), then per prefix the linear probe, k-NN accuracy,
// reconstruction error and MMD^2 to the prior, as JSON {"<m>": {metric: value}}. Shared by
// `matvae eval` (run_eval.h) and the experiment.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "matvae/data/dataset.h"
#include "matvae/eval/linear_probe.h"
#include "matvae/models/vae.h"
#include "matvae/train/config.h"

namespace matvae {

/// mu(x) for every image. images: [N, P] -> [N, D]; without gradients, in blocks of `batch` rows,
/// each block on one thread (util/threads.h), so the codes are the same at any thread count.
torch::Tensor encode_mu(Vae& model, const torch::Tensor& images, int64_t batch = 4096);

/// Downstream quality of features: linear-probe test accuracy (L2 chosen on a validation part of
/// train), k-NN accuracy for k = 1 and 5, and 1-NN of standardised codes (knn1_std) and by cosine
/// similarity (knn1_cos). train: [N, m], test: [T, m].
nlohmann::ordered_json feature_metrics(const torch::Tensor& train, const torch::Tensor& train_labels,
                                       const torch::Tensor& test, const torch::Tensor& test_labels,
                                       int64_t num_classes, uint64_t seed);

/// feature_metrics with what they were computed from: the fitted probe and each test row's 10
/// nearest training rows, which the adaptive evaluation uses again.
struct PrefixFeatures {
  nlohmann::ordered_json metrics;
  ProbeResult probe;
  torch::Tensor neighbours;  // [T, 10] int64, knn_neighbours
};
PrefixFeatures prefix_features(const torch::Tensor& train, const torch::Tensor& train_labels, const torch::Tensor& test,
                               const torch::Tensor& test_labels, int64_t num_classes, uint64_t seed);

/// What one model's evaluations share, so that each is computed once: its mean codes (training
/// images by encode_mu, test images in one block) and, per prefix size, the features of those codes.
/// One per model and seed: the experiment keeps one while it runs a model's evaluations, which
/// meet the same prefixes (per prefix, truncated and adaptive). Every evaluation gives the same
/// numbers with it as without it.
struct CodeShare {
  torch::Tensor train_codes, test_codes;  // [N, D] and [T, D]; undefined until an evaluation encodes
  torch::Tensor test_logvar;              // [T, D] the test images' log sigma^2 (the ELBO's posterior spread)
  std::map<int64_t, PrefixFeatures> prefixes;
};

/// How reconstructions are scored: images by the Bernoulli NLL whatever the training likelihood (one
/// unit for every image model), feature rows by the normal NLL they were trained with.
Likelihood scored_likelihood(const TrainConfig& config);

/// The reconstruction loss (nats per image) and the squared error per image of the decoded means.
/// logits: [T, P], x: [T, P].
nlohmann::ordered_json reconstruction_metrics(const torch::Tensor& logits, const torch::Tensor& x,
                                              Likelihood likelihood);

/// Each evaluation below checks `stop` (when given) before each m of `dims`: once it is true, it
/// returns the m done so far, so that a Ctrl-C need not wait for them all. The per-prefix and
/// adaptive evaluations run their m side by side, one per thread of the caller's, each at one
/// intra-op thread (util/threads.h): their numbers are the same at any thread count.
using EvalStop = std::function<bool()>;

/// Every metric of a trained model at each m of its nesting list ("prefix" use):
/// {"<m>": {probe, knn1, knn5, recon, mse, mmd, [neg_elbo]}}. `truncate`: evaluate z[:m] for
/// every m in `dims` by zero-padding (a model trained without MRL); otherwise dims must be in
/// the nesting list.
nlohmann::ordered_json evaluate_prefixes(Vae& model, const TrainConfig& config, const TrainTest& data,
                                         const std::vector<int64_t>& dims, bool truncate, uint64_t seed,
                                         const EvalStop& stop = {}, CodeShare* share = nullptr);

/// The full-size model's codes reduced to m by PCA fitted on its training codes (MRL's "SVD"
/// baseline), decoded back through the model for the reconstruction.
nlohmann::ordered_json evaluate_code_pca(Vae& model, const TrainConfig& config, const TrainTest& data,
                                         const std::vector<int64_t>& dims, uint64_t seed, const EvalStop& stop = {});

/// The adaptive uses of a Matryoshka model's code at its nesting list (eval/adaptive.h): retrieval
/// exact and by funnel, and the classification cascade. {"retrieval": ..., "cascade": ...}.
nlohmann::ordered_json evaluate_adaptive(Vae& model, const TrainConfig& config, const TrainTest& data, uint64_t seed,
                                         CodeShare* share = nullptr);

/// PCA of the pixels to m dimensions (the linear baseline); reconstruction from the projection.
nlohmann::ordered_json evaluate_pixel_pca(const TrainTest& data, const std::vector<int64_t>& dims, uint64_t seed,
                                          const EvalStop& stop = {});

}  // namespace matvae
