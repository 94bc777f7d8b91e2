// The linear probe: standardisation, one L-BFGS fit, the seeded validation split, the choice of
// the L2 strength (training data only) and the final refit scored on test.
#include "matvae/eval/linear_probe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace matvae {

namespace {

// The fit runs in float32: on standardised features the problem is well conditioned, and the
// matrix products and softmax over all N rows, which dominate, run over twice as fast as in float64.
constexpr auto kFitDtype = torch::kFloat32;

// L-BFGS stops when no gradient entry of the mean loss exceeds kGradTol or the loss stops changing by
// kChangeTol (in float32 usually the latter, with gradient entries near 1e-5): far below what moves
// a predicted class.
constexpr double kGradTol = 1e-5;
constexpr double kChangeTol = 1e-9;
constexpr int64_t kHistory = 20;

/// x: [N, m] features, y: [N] labels; `what` names the pair in messages ("train", "test").
void check_data(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, const char* fn, const char* what) {
  TORCH_CHECK(x.defined() && x.dim() == 2, fn, ": expected ", what, " features of shape [N, m], got ",
              x.defined() ? x.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(x.size(0) >= 1 && x.size(1) >= 1, fn, ": expected at least one ", what, " row and column, got ",
              x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), fn, ": expected floating ", what, " features, got ",
              x.scalar_type());
  TORCH_CHECK(torch::isfinite(x).all().item<bool>(), fn, ": ", what, " features hold a NaN or infinity");
  TORCH_CHECK(y.defined() && y.dim() == 1 && y.size(0) == x.size(0), fn, ": expected ", what, " labels of shape [",
              x.size(0), "] to match features ", x.sizes(), ", got ", y.defined() ? y.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(y.scalar_type() == torch::kInt64, fn, ": expected int64 ", what, " labels, got ", y.scalar_type());
  TORCH_CHECK(num_classes >= 2, fn, ": expected num_classes >= 2, got ", num_classes);
  const int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < num_classes, fn, ": expected ", what, " labels in [0, ", num_classes, "), got one ",
              lo < 0 ? lo : hi);
}

void check_l2(double l2, const char* fn) {
  TORCH_CHECK(std::isfinite(l2) && l2 >= 0.0, fn, ": expected an L2 strength >= 0, got ", l2);
}

void check_options(const ProbeOptions& o, const char* fn) {
  TORCH_CHECK(!o.grid.empty(), fn, ": expected a non-empty L2 grid");
  for (const double l2 : o.grid) check_l2(l2, fn);
  TORCH_CHECK(o.validation_fraction > 0.0 && o.validation_fraction < 1.0, fn,
              ": expected a validation_fraction in (0, 1), got ", o.validation_fraction);
  TORCH_CHECK(o.max_iter >= 1, fn, ": expected max_iter >= 1, got ", o.max_iter);
}

/// x: [N, m] -> [N, m] float32, (x - mean) / scale, taken in float64 (features may sit far from 0).
torch::Tensor standardise(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& scale) {
  return ((x.to(torch::kFloat64) - mean) / scale).to(kFitDtype);
}

double accuracy(const torch::Tensor& predicted, const torch::Tensor& y) {
  return predicted.eq(y).to(torch::kFloat64).mean().item<double>();
}

}  // namespace

ProbeObjective probe_objective(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, double l2) {
  TORCH_CHECK(x.dim() == 2 && y.dim() == 1 && y.size(0) == x.size(0), "probe_objective: expected x [N, m] and y [N], got ",
              x.sizes(), " and ", y.sizes());
  ProbeObjective o;
  o.x = x.detach().to(kFitDtype).contiguous();
  o.xt = o.x.t().contiguous();
  o.onehot_t = torch::one_hot(y, num_classes).to(kFitDtype).t().contiguous();
  o.l2 = l2;
  return o;
}

ProbeLoss probe_loss(const ProbeObjective& o, const torch::Tensor& weight_t, const torch::Tensor& bias) {
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(o.x.size(0));
  // Classes on the outer axis: ATen's log_softmax over a 10-wide inner axis is ~6x slower than this.
  const auto log_p = torch::log_softmax(torch::addmm(bias.unsqueeze(1), weight_t, o.xt), 0);  // [C, N]
  ProbeLoss out;
  // In the fit's dtype, like the rest: L-BFGS's change test then sees float32 steps, as it always has.
  out.value = (-(log_p * o.onehot_t).sum() / n + 0.5 * o.l2 * weight_t.square().sum()).item<double>();
  const auto residual = log_p.exp_().sub_(o.onehot_t).div_(n);  // (P - Y)^T / N: [C, N]
  out.grad_weight_t = torch::addmm(weight_t, residual, o.x, /*beta=*/o.l2, /*alpha=*/1);  // [C, m]
  out.grad_bias = residual.sum(1);
  return out;
}

ProbeModel fit_probe(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, double l2, int64_t max_iter,
                     const ProbeModel* warm_start) {
  check_data(x, y, num_classes, "fit_probe", "train");
  check_l2(l2, "fit_probe");
  TORCH_CHECK(max_iter >= 1, "fit_probe: expected max_iter >= 1, got ", max_iter);
  const int64_t m = x.size(1);
  if (warm_start) {
    TORCH_CHECK(warm_start->weight.sizes() == c10::IntArrayRef({m, num_classes}) &&
                    warm_start->bias.sizes() == c10::IntArrayRef({num_classes}),
                "fit_probe: expected a warm start with weight [", m, ", ", num_classes, "] and bias [", num_classes,
                "], got ", warm_start->weight.sizes(), " and ", warm_start->bias.sizes());
  }

  ProbeModel model;
  const auto x64 = x.detach().to(torch::kFloat64);
  model.mean = x64.mean(0);
  const auto sd = x64.std(0, /*unbiased=*/false);
  // A constant feature (up to rounding in the mean) is centred and left unscaled, not blown up.
  model.scale = torch::where(sd > 1e-12 * (model.mean.abs() + 1.0), sd, torch::ones_like(sd));
  const ProbeObjective objective = probe_objective(standardise(x64, model.mean, model.scale), y, num_classes, l2);

  // The optimiser sees the weight transposed, [C, m], the layout probe_loss computes in.
  const auto zeros = [](c10::IntArrayRef shape) { return torch::zeros(shape, torch::dtype(kFitDtype)); };
  auto weight_t = warm_start ? warm_start->weight.detach().to(kFitDtype).t().contiguous() : zeros({num_classes, m});
  auto bias = warm_start ? warm_start->bias.detach().to(kFitDtype).clone() : zeros({num_classes});
  // Leaves with gradients set by hand below: no autograd graph is built, which halves a step's cost.
  weight_t.requires_grad_(true);
  bias.requires_grad_(true);

  torch::optim::LBFGS optimizer({weight_t, bias}, torch::optim::LBFGSOptions(1.0)
                                                      .max_iter(max_iter)
                                                      .tolerance_grad(kGradTol)
                                                      .tolerance_change(kChangeTol)
                                                      .history_size(kHistory)
                                                      .line_search_fn("strong_wolfe"));
  optimizer.step([&] {
    ProbeLoss loss = probe_loss(objective, weight_t.detach(), bias.detach());
    weight_t.mutable_grad() = std::move(loss.grad_weight_t);
    bias.mutable_grad() = std::move(loss.grad_bias);
    return torch::scalar_tensor(loss.value, torch::dtype(kFitDtype));
  });

  // LBFGS keeps its whole state under its first parameter.
  TORCH_INTERNAL_ASSERT(optimizer.state().size() == 1, "expected one L-BFGS state, got ", optimizer.state().size());
  model.iterations = static_cast<const torch::optim::LBFGSParamState&>(*optimizer.state().begin()->second).n_iter();
  model.weight = weight_t.detach().t().contiguous();
  model.bias = bias.detach();
  return model;
}

torch::Tensor probe_logits(const ProbeModel& model, const torch::Tensor& x) {
  TORCH_CHECK(model.weight.defined(), "probe_logits: the model is not fitted");
  TORCH_CHECK(x.dim() == 2 && x.size(1) == model.weight.size(0), "probe_logits: expected features of shape [N, ",
              model.weight.size(0), "], got ", x.sizes());
  torch::NoGradGuard no_grad;
  return torch::addmm(model.bias, standardise(x.detach(), model.mean, model.scale), model.weight);
}

torch::Tensor probe_predict(const ProbeModel& model, const torch::Tensor& x) {
  return probe_logits(model, x).argmax(1);  // argmax returns the first maximum: ties go to the lower class
}

ProbeSplit probe_split(int64_t n, double validation_fraction, uint64_t seed) {
  TORCH_CHECK(n >= 2, "probe_split: expected at least 2 training rows to split, got ", n);
  TORCH_CHECK(validation_fraction > 0.0 && validation_fraction < 1.0,
              "probe_split: expected a validation_fraction in (0, 1), got ", validation_fraction);
  const int64_t v = std::clamp<int64_t>(std::llround(validation_fraction * static_cast<double>(n)), 1, n - 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
  return {std::get<0>(perm.narrow(0, v, n - v).sort()), std::get<0>(perm.narrow(0, 0, v).sort())};
}

L2Choice choose_l2(const torch::Tensor& train_x, const torch::Tensor& train_y, int64_t num_classes,
                   const ProbeOptions& options) {
  check_data(train_x, train_y, num_classes, "choose_l2", "train");
  check_options(options, "choose_l2");
  const auto split = probe_split(train_x.size(0), options.validation_fraction, options.seed);
  const auto fit_x = train_x.index_select(0, split.fit), fit_y = train_y.index_select(0, split.fit);
  const auto val_x = train_x.index_select(0, split.validation), val_y = train_y.index_select(0, split.validation);

  // From the strongest penalty (quick to fit) to the weakest, each fit starting from the last.
  std::vector<size_t> order(options.grid.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return options.grid[a] > options.grid[b]; });

  L2Choice choice;
  choice.grid = options.grid;
  choice.validation_accuracy.assign(options.grid.size(), 0.0);
  double best = -1.0;
  ProbeModel previous;
  for (const size_t g : order) {
    const double l2 = options.grid[g];
    ProbeModel model =
        fit_probe(fit_x, fit_y, num_classes, l2, options.max_iter, previous.weight.defined() ? &previous : nullptr);
    choice.iterations += model.iterations;
    const double acc = accuracy(probe_predict(model, val_x), val_y);
    choice.validation_accuracy[g] = acc;
    if (acc > best) {  // strictly better: a tie keeps the larger lambda, met first
      best = acc;
      choice.chosen_l2 = l2;
      choice.model = model;
    }
    previous = std::move(model);
  }
  return choice;
}

ProbeResult linear_probe(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                         const torch::Tensor& test_y, int64_t num_classes, const ProbeOptions& options) {
  check_data(train_x, train_y, num_classes, "linear_probe", "train");
  check_data(test_x, test_y, num_classes, "linear_probe", "test");
  TORCH_CHECK(test_x.size(1) == train_x.size(1), "linear_probe: expected test features with ", train_x.size(1),
              " columns like train ", train_x.sizes(), ", got ", test_x.sizes());
  check_options(options, "linear_probe");

  const L2Choice choice = choose_l2(train_x, train_y, num_classes, options);
  const ProbeModel model = fit_probe(train_x, train_y, num_classes, choice.chosen_l2, options.max_iter, &choice.model);

  ProbeResult result;
  result.chosen_l2 = choice.chosen_l2;
  result.grid = choice.grid;
  result.validation_accuracy = choice.validation_accuracy;
  result.selection_iterations = choice.iterations;
  result.iterations = model.iterations;
  result.train_accuracy = accuracy(probe_predict(model, train_x), train_y);
  result.test_accuracy = accuracy(probe_predict(model, test_x), test_y);  // the only use of test data
  result.model = model;
  result.validation_model = choice.model;
  return result;
}

}  // namespace matvae
