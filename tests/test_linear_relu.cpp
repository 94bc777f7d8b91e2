// The fused linear + bias + ReLU layer and the bias + ReLU pass against their plain ATen paths and
// float64: values and gradients to all inputs, shapes that do not fill the vector lanes or the
// bias sum's row blocks, NaN kept, the same bits on any number of threads, and the fallbacks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "matvae/models/linear_relu.h"
#include "test_util.h"

namespace {
using matvae::bias_relu;
using matvae::bias_relu_plain;
using matvae::linear_relu;
using matvae::linear_relu_plain;
using matvae_test::tensors_close;

std::string node_name(const torch::Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : "(none)"; }

/// The output and the gradients of sum(out * w) to every input of f.
template <class F>
std::vector<torch::Tensor> value_and_grads(F f, std::vector<torch::Tensor> inputs, const torch::Tensor& w) {
  for (auto& t : inputs) t = t.detach().clone().requires_grad_(true);
  torch::Tensor out;
  if constexpr (std::is_invocable_v<F, torch::Tensor, torch::Tensor, torch::Tensor>)
    out = f(inputs.at(0), inputs.at(1), inputs.at(2));
  else
    out = f(inputs.at(0), inputs.at(1));
  (out * w.to(out.scalar_type())).sum().backward();
  std::vector<torch::Tensor> r = {out.detach()};
  for (auto& t : inputs) r.push_back(t.grad());
  return r;
}

torch::Tensor lr3(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) { return linear_relu(a, b, c); }
torch::Tensor lr3_plain(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
  return linear_relu_plain(a, b, c);
}
torch::Tensor br2(const torch::Tensor& a, const torch::Tensor& b) { return bias_relu(a, b); }
torch::Tensor br2_plain(const torch::Tensor& a, const torch::Tensor& b) { return bias_relu_plain(a, b); }

const char* const kNames[] = {"value", "grad x", "grad weight", "grad bias"};

class LinearRelu : public matvae_test::SeededTest {};

TEST_F(LinearRelu, MatchesPlainPathAndFloat64InValueAndGradients) {
  // N below, at and across the 64-row blocks of the bias sum; O below and above the vector lanes.
  const std::vector<std::array<int64_t, 3>> shapes = {{256, 784, 512}, {1, 3, 1},  {7, 5, 9},
                                                      {64, 16, 33},    {65, 8, 17}, {200, 24, 256}};
  for (const auto& [n, in, out] : shapes) {
    SCOPED_TRACE("N=" + std::to_string(n) + " I=" + std::to_string(in) + " O=" + std::to_string(out));
    const auto x = torch::randn({n, in}), w = torch::randn({out, in}) / std::sqrt(in), b = torch::randn({out});
    const auto weights = torch::randn({n, out});
    const auto fused = value_and_grads(lr3, {x, w, b}, weights);
    const auto plain = value_and_grads(lr3_plain, {x, w, b}, weights);
    const auto exact =
        value_and_grads(lr3_plain, {x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64)}, weights);
    EXPECT_EQ(fused[0].scalar_type(), torch::kFloat32);
    // The bias gradient sums N terms of size ~1: float rounding grows with N.
    for (size_t i = 0; i < fused.size(); ++i) {
      SCOPED_TRACE(kNames[i]);
      const double tol = 1e-5 * std::sqrt(static_cast<double>(std::max<int64_t>(n, in))) + 1e-5;
      EXPECT_TRUE(tensors_close(fused[i], plain[i], tol));
      EXPECT_TRUE(tensors_close(fused[i], exact[i], tol));
    }
  }
}

TEST_F(LinearRelu, BiasReluMatchesPlainPathForAnyLeadingShape) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{6, 128, 512}, {3, 1, 7}, {130, 33}, {5}}) {
    SCOPED_TRACE(::testing::PrintToString(shape));
    const auto h = torch::randn(shape), b = torch::randn({shape.back()}), weights = torch::randn(shape);
    const auto fused = value_and_grads(br2, {h, b}, weights);
    const auto plain = value_and_grads(br2_plain, {h, b}, weights);
    const auto exact = value_and_grads(br2_plain, {h.to(torch::kFloat64), b.to(torch::kFloat64)}, weights);
    const double tol = 1e-5 * std::sqrt(static_cast<double>(h.numel() / shape.back())) + 1e-6;
    for (size_t i = 0; i < fused.size(); ++i) {
      SCOPED_TRACE(i == 0 ? "value" : i == 1 ? "grad h" : "grad bias");
      EXPECT_TRUE(tensors_close(fused[i], plain[i], i == 2 ? tol : 0));  // value and mask: exact
      EXPECT_TRUE(tensors_close(fused[i], exact[i], tol));
    }
  }
}

TEST_F(LinearRelu, TakesTheFusedKernelForCpuFloat) {
  // Without this the comparisons above could pass by falling back to the plain path.
  const auto x = torch::randn({4, 3}), w = torch::randn({5, 3}).requires_grad_(true), b = torch::randn({5});
  EXPECT_TRUE(matvae_test::contains(node_name(linear_relu(x, w, b)), "LinearRelu"));
  EXPECT_TRUE(matvae_test::contains(node_name(bias_relu(x.requires_grad_(true), torch::randn({3}))), "BiasRelu"));
  EXPECT_FALSE(matvae_test::contains(node_name(linear_relu_plain(x, w, b)), "LinearRelu"));
}

TEST_F(LinearRelu, OnlyTheInputsThatNeedItGetAGradient) {
  const auto x = torch::randn({9, 4}), w = torch::randn({6, 4}).requires_grad_(true), b = torch::randn({6});
  linear_relu(x, w, b).sum().backward();
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  const auto want = value_and_grads(lr3_plain, {x, w, b}, torch::ones({9, 6}));
  EXPECT_TRUE(tensors_close(w.grad(), want[2], 1e-5));
}

TEST_F(LinearRelu, NanStaysNan) {
  // A diverging run must show as NaN in its loss (the trainer stops on it), not be clamped to 0.
  auto x = torch::randn({3, 4});
  x[1][2] = std::numeric_limits<float>::quiet_NaN();
  const auto y = linear_relu(x, torch::randn({5, 4}), torch::randn({5}));
  EXPECT_TRUE(torch::isnan(y[1]).all().item<bool>());
  EXPECT_FALSE(torch::isnan(y[0]).any().item<bool>());
  auto h = torch::randn({2, 6});
  h[0][3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(bias_relu(h, torch::zeros({6}))[0][3].item<float>()));
}

TEST_F(LinearRelu, SameBitsOnOneAndTwoThreads) {
  const int threads = at::get_num_threads();
  const auto x = torch::randn({1536, 256}), w = torch::randn({512, 256}) / 16, b = torch::randn({512});
  const auto weights = torch::randn({1536, 512});
  at::set_num_threads(1);
  const auto one = value_and_grads(lr3, {x, w, b}, weights);
  at::set_num_threads(2);
  const auto two = value_and_grads(lr3, {x, w, b}, weights);
  at::set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE(kNames[i]);
    // The products are the BLAS's; the bias pass and the bias sum are ours and must not move.
    if (i == 0 || i == 3) EXPECT_TRUE(torch::equal(one[i], two[i]));
  }
}

TEST_F(LinearRelu, WithoutGradientGivesTheSameValues) {
  const auto x = torch::randn({10, 6}), w = torch::randn({7, 6}), b = torch::randn({7});
  const auto with = linear_relu(x, w.clone().requires_grad_(true), b);
  torch::NoGradGuard no_grad;
  const auto without = linear_relu(x, w, b);
  EXPECT_FALSE(without.requires_grad());
  EXPECT_TRUE(torch::equal(with.detach(), without));
}

TEST_F(LinearRelu, FallsBackToThePlainPath) {
  const auto x = torch::randn({5, 4}), w = torch::randn({3, 4}), b = torch::randn({3});
  {
    SCOPED_TRACE("float64");
    const auto got = linear_relu(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64));
    EXPECT_EQ(got.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(torch::equal(got, linear_relu_plain(x.to(torch::kFloat64), w.to(torch::kFloat64),
                                                    b.to(torch::kFloat64))));
  }
  {
    SCOPED_TRACE("non-contiguous inputs take the fused path through copies");
    const auto wt = w.t().contiguous().t(), ht = x.t().contiguous().t();
    ASSERT_FALSE(wt.is_contiguous());
    EXPECT_TRUE(tensors_close(linear_relu(x, wt, b), linear_relu_plain(x, w, b), 1e-6));
    EXPECT_TRUE(tensors_close(bias_relu(ht, torch::randn({4}).zero_()), torch::relu(x), 0));
  }
  // Shapes that do not fit are ATen's to refuse, with its message.
  EXPECT_THROW(linear_relu(x, torch::randn({3, 5}), b), c10::Error);
  EXPECT_THROW(linear_relu(x, w, torch::randn({4})), c10::Error);
  EXPECT_THROW(bias_relu(x, torch::randn({5})), c10::Error);
}

}  // namespace
