// Adaptive classification by a cascade of per-prefix probes; see cascade.h.
#include "matvae/eval/cascade.h"

#include "matvae/eval/linear_probe.h"

namespace matvae {

CascadeDecision cascade_decide(const std::vector<torch::Tensor>& probs, double threshold) {
  TORCH_CHECK(!probs.empty(), "cascade_decide: expected the probabilities of at least one prefix");
  const int64_t t = probs[0].size(0);
  CascadeDecision d;
  d.predictions = torch::full({t}, -1, torch::kInt64);
  d.stopped_at = torch::full({t}, -1, torch::kInt64);
  auto open = torch::ones({t}, torch::kBool);
  for (size_t k = 0; k < probs.size(); ++k) {
    const auto [p, cls] = probs[k].max(1);
    const auto stop = open.logical_and(k + 1 == probs.size() ? torch::ones_like(open) : p.ge(threshold));
    d.predictions.masked_scatter_(stop, cls.masked_select(stop));
    d.stopped_at.masked_fill_(stop, static_cast<int64_t>(k));
    open = open.logical_and(stop.logical_not());
  }
  return d;
}

CascadeResult adaptive_classification(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const torch::Tensor& test_y,
                                      const std::vector<int64_t>& nesting, int64_t num_classes, uint64_t seed,
                                      const std::vector<double>& thresholds) {
  TORCH_CHECK(!nesting.empty() && nesting.back() <= train_x.size(1),
              "adaptive_classification: expected a nesting list within the code's ", train_x.size(1), " columns");
  torch::NoGradGuard no_grad;
  ProbeOptions options;
  options.seed = seed;
  std::vector<ProbeResult> fitted;
  for (const int64_t m : nesting)
    fitted.push_back(linear_probe(train_x.narrow(1, 0, m), train_y, test_x.narrow(1, 0, m), test_y, num_classes, options));
  std::vector<const ProbeResult*> probes;
  for (const auto& p : fitted) probes.push_back(&p);
  return adaptive_classification(train_x, train_y, test_x, test_y, nesting, probes, seed, thresholds);
}

CascadeResult adaptive_classification(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const torch::Tensor& test_y,
                                      const std::vector<int64_t>& nesting, const std::vector<const ProbeResult*>& probes,
                                      uint64_t seed, const std::vector<double>& thresholds) {
  TORCH_CHECK(!nesting.empty() && nesting.back() <= train_x.size(1),
              "adaptive_classification: expected a nesting list within the code's ", train_x.size(1), " columns");
  TORCH_CHECK(probes.size() == nesting.size(), "adaptive_classification: expected one probe per prefix size (",
              nesting.size(), "), got ", probes.size());
  torch::NoGradGuard no_grad;
  const auto split = probe_split(train_x.size(0), ProbeOptions{}.validation_fraction, seed);
  const auto val_x = train_x.index_select(0, split.validation), val_y = train_y.index_select(0, split.validation);
  std::vector<torch::Tensor> val_probs, test_probs;
  CascadeResult out;
  for (size_t i = 0; i < nesting.size(); ++i) {
    const int64_t m = nesting[i];
    const ProbeResult& probe = *probes[i];
    TORCH_CHECK(probe.model.weight.defined() && probe.model.weight.size(0) == m, "adaptive_classification: probe ", i,
                " is not a fitted probe of ", m, " features");
    val_probs.push_back(torch::softmax(probe_logits(probe.validation_model, val_x.narrow(1, 0, m)), 1));
    test_probs.push_back(torch::softmax(probe_logits(probe.model, test_x.narrow(1, 0, m)), 1));
  }
  out.full_test_accuracy = probes.back()->test_accuracy;
  const auto dims = torch::tensor(nesting, torch::kInt64).to(torch::kFloat64);
  const auto score = [&](const CascadeDecision& d, const torch::Tensor& y) {
    return std::pair{d.predictions.eq(y).to(torch::kFloat64).mean().item<double>(),
                     dims.index_select(0, d.stopped_at).mean().item<double>()};
  };
  out.full_validation_accuracy = score(cascade_decide({val_probs.back()}, 2.0), val_y).first;
  for (const double threshold : thresholds) {
    CascadePoint p;
    p.threshold = threshold;
    std::tie(p.validation_accuracy, p.validation_dims) = score(cascade_decide(val_probs, threshold), val_y);
    std::tie(p.test_accuracy, p.test_dims) = score(cascade_decide(test_probs, threshold), test_y);
    out.points.push_back(p);
  }
  // The cheapest threshold that matches the full code on validation; else the most accurate.
  for (size_t i = 0; i < out.points.size(); ++i) {
    const auto& p = out.points[i];
    if (p.validation_accuracy < out.full_validation_accuracy) continue;
    if (out.chosen < 0 || p.validation_dims < out.points[out.chosen].validation_dims) out.chosen = static_cast<int64_t>(i);
  }
  if (out.chosen < 0 && !out.points.empty()) {
    out.chosen = 0;
    for (size_t i = 1; i < out.points.size(); ++i)
      if (out.points[i].validation_accuracy > out.points[out.chosen].validation_accuracy) out.chosen = static_cast<int64_t>(i);
  }
  return out;
}

}  // namespace matvae
