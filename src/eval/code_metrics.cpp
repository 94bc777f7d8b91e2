// Per-prefix evaluation of codes; see code_metrics.h.
#include "matvae/eval/code_metrics.h"

#include "matvae/eval/adaptive.h"
#include "matvae/eval/knn.h"
#include "matvae/eval/linear_probe.h"
#include "matvae/eval/pca.h"
#include "matvae/eval/retrieval.h"
#include "matvae/losses/kl.h"
#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/util/threads.h"

#include <algorithm>
#include <optional>
#include <tuple>

namespace matvae {
namespace {

constexpr int64_t kMmdSamples = 2000;         // codes compared with as many prior draws
constexpr int64_t kCosineFloat64Below = 4;    // cosine 1-NN in float64 below this m (see knn1_cos)
constexpr int64_t kRetrieved = 10;            // the ranked list retrieval is scored on (mAP@10, as MRL reports)

/// Pads z[:, :m] with zeros to D columns: what a decoder trained on the full code sees.
torch::Tensor zero_pad(const torch::Tensor& prefix, int64_t D) {
  if (prefix.size(1) == D) return prefix;
  return torch::cat({prefix, torch::zeros({prefix.size(0), D - prefix.size(1)}, prefix.options())}, 1);
}

double mmd_to_prior(const torch::Tensor& codes, const TrainConfig& config, uint64_t seed) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(kMmdSamples, codes.size(0));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto prior = at::randn({n, codes.size(1)}, gen, codes.options());
  MmdOptions o;
  o.kernel = config.kernel;
  o.bandwidth = config.bandwidth;
  o.unbiased = true;  // an unbiased estimate, so that values near 0 mean "matches the prior"
  return mmd_value(codes.narrow(0, 0, n), prior, o);
}

/// Decodes in batches. codes: [T, m] -> logits [T, P].
torch::Tensor decode_all(Vae& model, const torch::Tensor& codes, int64_t batch = 4096) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < codes.size(0); s += batch)
    parts.push_back(model->decode(codes.narrow(0, s, std::min(batch, codes.size(0) - s))));
  return torch::cat(parts, 0);
}

/// mu(x) and log sigma^2(x) for every image, in blocks of `batch` rows, one block per thread
/// (util/threads.h): the codes are the same bits at any thread count.
std::pair<torch::Tensor, torch::Tensor> encode_posterior(Vae& model, const torch::Tensor& images, int64_t batch) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = images.size(0), blocks = std::max<int64_t>(1, (n + batch - 1) / batch);
  std::vector<torch::Tensor> mu(static_cast<size_t>(blocks)), logvar(mu.size());
  run_one_thread_each(mu.size(), [&](size_t b) {
    const int64_t start = static_cast<int64_t>(b) * batch;
    std::tie(mu[b], logvar[b]) = model->encode(images.narrow(0, start, std::min(batch, n - start)));
  });
  return {torch::cat(mu, 0), torch::cat(logvar, 0)};
}

/// Encodes the training and test images into `share` unless an earlier evaluation of the model did.
/// The test images go through the encoder in one block, as the per-prefix evaluation always encoded
/// them, which gives their posterior spread too.
void encode_codes(Vae& model, const TrainTest& data, CodeShare& share) {
  if (share.train_codes.defined()) return;
  share.train_codes = encode_mu(model, data.train.images);
  std::tie(share.test_codes, share.test_logvar) =
      encode_posterior(model, data.test.images, std::max<int64_t>(1, data.test.size()));
}

/// Adds to `share` the features of every prefix size in `dims` it lacks, one m per thread, the
/// largest first (its probe takes longest). Stops starting new ones once `stop` is true.
void add_features(const torch::Tensor& train_codes, const torch::Tensor& test_codes, const TrainTest& data,
                  const std::vector<int64_t>& dims, uint64_t seed, CodeShare& share, const EvalStop& stop) {
  std::vector<int64_t> missing;
  for (const int64_t m : dims)
    if (!share.prefixes.count(m) && std::find(missing.begin(), missing.end(), m) == missing.end()) missing.push_back(m);
  std::sort(missing.rbegin(), missing.rend());
  std::vector<std::optional<PrefixFeatures>> done(missing.size());
  run_one_thread_each(missing.size(), [&](size_t i) {
    if (stop && stop()) return;
    const int64_t m = missing[i];
    done[i] = prefix_features(train_codes.narrow(1, 0, m), data.train.labels, test_codes.narrow(1, 0, m),
                              data.test.labels, data.train.num_classes, seed);
  });
  for (size_t i = 0; i < missing.size(); ++i)
    if (done[i]) share.prefixes.emplace(missing[i], std::move(*done[i]));
}

/// {"<m>": metrics(m)} for each m of `dims`, one m per thread (util/threads.h), claimed in the order
/// of `dims`; an m is skipped (left out) once `stop` is true or when metrics returns nothing.
nlohmann::ordered_json per_prefix(const std::vector<int64_t>& dims, const EvalStop& stop,
                                  const std::function<std::optional<nlohmann::ordered_json>(int64_t)>& metrics) {
  std::vector<std::optional<nlohmann::ordered_json>> done(dims.size());
  run_one_thread_each(dims.size(), [&](size_t i) {
    if (!(stop && stop())) done[i] = metrics(dims[i]);
  });
  nlohmann::ordered_json out;
  for (size_t i = 0; i < dims.size(); ++i)
    if (done[i]) out[std::to_string(dims[i])] = std::move(*done[i]);
  return out;
}

}  // namespace

torch::Tensor encode_mu(Vae& model, const torch::Tensor& images, int64_t batch) {
  return encode_posterior(model, images, batch).first;
}

PrefixFeatures prefix_features(const torch::Tensor& train, const torch::Tensor& train_labels, const torch::Tensor& test,
                               const torch::Tensor& test_labels, int64_t num_classes, uint64_t seed) {
  PrefixFeatures f;
  nlohmann::ordered_json& j = f.metrics;
  ProbeOptions po;
  po.seed = seed;
  f.probe = linear_probe(train, train_labels, test, test_labels, num_classes, po);
  j["probe"] = f.probe.test_accuracy;
  j["probe_l2"] = f.probe.chosen_l2;
  // One neighbour search serves k-NN (k = 1, 5) and retrieval (the ranked top 10, same label = relevant).
  const int64_t k = std::min<int64_t>(kRetrieved, train.size(0));
  f.neighbours = knn_neighbours(train, test, k);
  const auto votes = knn_vote(train_labels.index_select(0, f.neighbours.view(-1)).view({test.size(0), k}),
                              {1, std::min<int64_t>(5, k)}, num_classes);
  j["knn1"] = votes[0].eq(test_labels).to(torch::kFloat64).mean().item<double>();
  j["knn5"] = votes[1].eq(test_labels).to(torch::kFloat64).mean().item<double>();
  const RetrievalScores r = retrieval_scores(f.neighbours, train_labels, test_labels);
  j["map10"] = r.map;
  j["precision10"] = r.precision;
  j["recall10"] = r.recall;
  // Beside L2, never instead of it: 1-NN on codes standardised with the training statistics, and
  // by cosine similarity (L2 on unit-length rows ranks neighbours as cosine does).
  const auto mean = train.mean(0, true), scale = train.std(0, false, true).clamp_min(1e-12);
  j["knn1_std"] = knn_accuracy((train - mean) / scale, train_labels, (test - mean) / scale, test_labels, {1}).accuracy.at(0);
  // Unit rows in float64 for m < kCosineFloat64Below: the search's product form 2 - 2 a.b rounds to
  // steps of ~1e-7 in float32, and on the circle (m = 2) 60,000 codes lie ~1e-4 rad apart (squared
  // distance ~1e-8), so float32 left the nearest code to rounding: on a quick-profile MNIST model 28% of
  // its 1-NN agreed with float64's, and the accuracy moved by up to 1.6 points with the encoder's
  // thread count. Agreement was 99.89% at m = 3 and >= 99.99% from m = 4, where float32 stays.
  const auto precision = train.size(1) < kCosineFloat64Below ? torch::kFloat64 : train.scalar_type();
  const auto unit = [&](const torch::Tensor& x) {
    const auto y = x.to(precision);
    return y / y.norm(2, 1, true).clamp_min(1e-12);
  };
  j["knn1_cos"] = knn_accuracy(unit(train), train_labels, unit(test), test_labels, {1}).accuracy.at(0);
  return f;
}

nlohmann::ordered_json feature_metrics(const torch::Tensor& train, const torch::Tensor& train_labels,
                                       const torch::Tensor& test, const torch::Tensor& test_labels,
                                       int64_t num_classes, uint64_t seed) {
  return prefix_features(train, train_labels, test, test_labels, num_classes, seed).metrics;
}

Likelihood scored_likelihood(const TrainConfig& config) {
  return config.likelihood == Likelihood::kNormal ? Likelihood::kNormal : Likelihood::kBernoulli;
}

nlohmann::ordered_json reconstruction_metrics(const torch::Tensor& logits, const torch::Tensor& x,
                                              Likelihood likelihood) {
  nlohmann::ordered_json j;
  j["recon"] = loss_recon(logits, x, likelihood).mean().item<double>();
  j["mse"] = (output_mean(logits, likelihood) - x).square().sum(1).mean().item<double>();
  return j;
}

nlohmann::ordered_json evaluate_prefixes(Vae& model, const TrainConfig& config, const TrainTest& data,
                                         const std::vector<int64_t>& dims, bool truncate, uint64_t seed,
                                         const EvalStop& stop, CodeShare* share) {
  if (stop && stop()) return nlohmann::ordered_json();  // before the codes, which take a while
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t D = config.latent;
  for (const int64_t m : dims) TORCH_CHECK(m >= 1 && m <= D, "prefix size ", m, " is outside 1..", D);
  CodeShare own;
  CodeShare& features = share ? *share : own;
  encode_codes(model, data, features);
  const torch::Tensor& test_mu = features.test_codes;
  add_features(features.train_codes, test_mu, data, dims, seed, features, stop);
  const bool kl_model = !config.uses_mmd();
  // Then, one m per thread as above, what needs the decoder and the prior.
  return per_prefix(dims, stop, [&](int64_t m) -> std::optional<nlohmann::ordered_json> {
    if (!features.prefixes.count(m)) return std::nullopt;  // stopped before its features
    const auto test_prefix = test_mu.narrow(1, 0, m);
    auto j = features.prefixes.at(m).metrics;
    const auto logits = truncate ? decode_all(model, zero_pad(test_prefix, D)) : decode_all(model, test_prefix);
    j.update(reconstruction_metrics(logits, data.test.images, scored_likelihood(config)));
    j["mmd"] = mmd_to_prior(test_prefix, config, seed + 1);
    if (kl_model && !truncate) {
      // Negative ELBO in nats, one posterior sample per image, KL of the prefix in closed form.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 2);
      const auto mu = test_mu.narrow(1, 0, m), logvar = features.test_logvar.narrow(1, 0, m);
      const auto z = mu + at::randn(mu.sizes(), gen, mu.options()) * torch::exp(0.5 * logvar);
      j["neg_elbo"] = loss_recon(decode_all(model, z), data.test.images, scored_likelihood(config)).mean().item<double>() +
                      loss_kl(mu, logvar).item<double>();
    }
    return j;
  });
}

nlohmann::ordered_json evaluate_adaptive(Vae& model, const TrainConfig& config, const TrainTest& data, uint64_t seed,
                                         CodeShare* share) {
  torch::NoGradGuard no_grad;
  CodeShare own;
  CodeShare& features = share ? *share : own;
  encode_codes(model, data, features);
  const torch::Tensor &train_codes = features.train_codes, &test_codes = features.test_codes;
  // The probes and exact lists of the per-prefix evaluation, made here where it has not made them.
  add_features(train_codes, test_codes, data, config.nesting, seed, features, {});
  std::vector<const ProbeResult*> probes;
  std::vector<torch::Tensor> lists;
  for (const int64_t m : config.nesting) {
    probes.push_back(&features.prefixes.at(m).probe);
    lists.push_back(features.prefixes.at(m).neighbours);
  }
  nlohmann::ordered_json out;
  out["retrieval"] = adaptive_retrieval(train_codes, data.train.labels, test_codes, data.test.labels, config.nesting,
                                        kRetrieved, lists);
  out["cascade"] = adaptive_classification_json(train_codes, data.train.labels, test_codes, data.test.labels,
                                                config.nesting, probes, seed);
  return out;
}

nlohmann::ordered_json evaluate_code_pca(Vae& model, const TrainConfig& config, const TrainTest& data,
                                         const std::vector<int64_t>& dims, uint64_t seed, const EvalStop& stop) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto train_codes = encode_mu(model, data.train.images);
  const auto test_codes = encode_mu(model, data.test.images);
  return per_prefix(dims, stop, [&](int64_t m) -> std::optional<nlohmann::ordered_json> {
    const Pca pca = fit_pca(train_codes, m);
    const auto tr = pca_transform(pca, train_codes), te = pca_transform(pca, test_codes);
    auto j = feature_metrics(tr, data.train.labels, te, data.test.labels, data.train.num_classes, seed);
    j.update(reconstruction_metrics(decode_all(model, pca_reconstruct(pca, te)), data.test.images,
                                    scored_likelihood(config)));
    return j;
  });
}

nlohmann::ordered_json evaluate_pixel_pca(const TrainTest& data, const std::vector<int64_t>& dims, uint64_t seed,
                                          const EvalStop& stop) {
  torch::NoGradGuard no_grad;
  const int64_t kmax = *std::max_element(dims.begin(), dims.end());
  Pca full;
  run_one_thread_each(1, [&](size_t) { full = fit_pca(data.train.images, kmax); });  // on one thread, as below
  return per_prefix(dims, stop, [&](int64_t m) -> std::optional<nlohmann::ordered_json> {
    Pca pca = full;
    pca.components = full.components.narrow(0, 0, m);
    pca.explained_variance = full.explained_variance.narrow(0, 0, m);
    const auto tr = pca_transform(pca, data.train.images), te = pca_transform(pca, data.test.images);
    auto j = feature_metrics(tr, data.train.labels, te, data.test.labels, data.train.num_classes, seed);
    // PCA reconstructs intensities, not probabilities: squared error only.
    j["mse"] = (pca_reconstruct(pca, te) - data.test.images).square().sum(1).mean().item<double>();
    return j;
  });
}

}  // namespace matvae
