// Exact k-NN classification: the blocked fast path (matmul distances, one pass per row keeping the
// k best in (distance, index) order, a vote) and the float64 double-loop reference it is tested against.
#include "matvae/eval/knn.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace matvae {

namespace {

void check_codes(const torch::Tensor& train_x, const torch::Tensor& test_x, const char* fn) {
  TORCH_CHECK(train_x.dim() == 2 && train_x.size(0) >= 1 && train_x.size(1) >= 1, fn,
              ": expected train codes of shape [N, m] with N, m >= 1, got ", train_x.sizes());
  TORCH_CHECK(test_x.dim() == 2 && test_x.size(1) == train_x.size(1), fn, ": expected test codes of shape [T, ",
              train_x.size(1), "] like train ", train_x.sizes(), ", got ", test_x.sizes());
  TORCH_CHECK(at::isFloatingType(train_x.scalar_type()) && at::isFloatingType(test_x.scalar_type()), fn,
              ": expected floating codes, got ", train_x.scalar_type(), " and ", test_x.scalar_type());
  TORCH_CHECK(test_x.size(0) >= 1, fn, ": expected at least one test row, got ", test_x.sizes());
  TORCH_CHECK(torch::isfinite(train_x).all().item<bool>() && torch::isfinite(test_x).all().item<bool>(), fn,
              ": the codes hold a NaN or infinity");
}

void check_inputs(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                  const std::vector<int64_t>& ks, const char* fn) {
  check_codes(train_x, test_x, fn);
  TORCH_CHECK(train_y.dim() == 1 && train_y.size(0) == train_x.size(0), fn, ": expected train labels of shape [",
              train_x.size(0), "], got ", train_y.sizes());
  TORCH_CHECK(train_y.scalar_type() == torch::kInt64, fn, ": expected int64 train labels, got ", train_y.scalar_type());
  TORCH_CHECK(train_y.min().item<int64_t>() >= 0, fn, ": expected train labels >= 0, got ",
              train_y.min().item<int64_t>());
  TORCH_CHECK(!ks.empty(), fn, ": expected at least one k");
  for (const int64_t k : ks) {
    TORCH_CHECK(k >= 1 && k <= train_x.size(0), fn, ": expected every k in [1, N = ", train_x.size(0), "], got ", k);
  }
}

/// The k nearest training rows of each row of distances d [rows, N], in neighbour order (by distance,
/// then by the lower index), written to out [rows, k]. One pass per row: a distance below the k-th
/// best so far is appended to a buffer of 2k, which, when full, keeps its k best (nth_element) and
/// lowers the bar to its k-th. Most distances are turned away by that one comparison; one that gets in
/// costs O(1) amortised, not the k moves of an ordered insert or the log k of a heap (a funnel's short
/// list keeps 200 at a small prefix, where many get in). About three times faster than topk followed
/// by the reordering that its arbitrary order of ties needs.
template <typename T>
void nearest_in_rows(const torch::Tensor& d, int64_t k, torch::Tensor& out) {
  const T* base = d.data_ptr<T>();
  const int64_t n = d.size(1), stride = d.stride(0);
  int64_t* o = out.data_ptr<int64_t>();
  const auto kth = static_cast<std::ptrdiff_t>(k - 1);
  at::parallel_for(0, d.size(0), 16, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<T, int64_t>> kept;  // (distance, index): pairs order as neighbours do
    kept.reserve(static_cast<size_t>(2 * k));
    for (int64_t r = begin; r < end; ++r) {
      const T* row = base + r * stride;
      kept.clear();
      for (int64_t j = 0; j < k; ++j) kept.emplace_back(row[j], j);
      T bar = std::max_element(kept.begin(), kept.end())->first;  // the k-th best so far, or worse
      for (int64_t j = k; j < n; ++j) {
        const T v = row[j];
        // An equal distance never displaces a kept one: that one has the lower index.
        if (!(v < bar)) continue;
        kept.emplace_back(v, j);
        if (kept.size() == static_cast<size_t>(2 * k)) {
          std::nth_element(kept.begin(), kept.begin() + kth, kept.end());
          kept.resize(static_cast<size_t>(k));
          bar = kept.back().first;
        }
      }
      if (kept.size() > static_cast<size_t>(k)) {
        std::nth_element(kept.begin(), kept.begin() + kth, kept.end());
        kept.resize(static_cast<size_t>(k));
      }
      std::sort(kept.begin(), kept.end());
      for (int64_t j = 0; j < k; ++j) o[r * k + j] = kept[static_cast<size_t>(j)].second;
    }
  });
}

}  // namespace

torch::Tensor knn_neighbours(const torch::Tensor& train_x, const torch::Tensor& test_x, int64_t k_max,
                             const KnnOptions& options) {
  check_codes(train_x, test_x, "knn_neighbours");
  TORCH_CHECK(k_max >= 1 && k_max <= train_x.size(0), "knn_neighbours: expected k in [1, N = ", train_x.size(0),
              "], got ", k_max);
  TORCH_CHECK(options.block_rows >= 1, "knn_neighbours: expected block_rows >= 1, got ", options.block_rows);
  torch::NoGradGuard no_grad;
  const int64_t t_count = test_x.size(0);

  // float64 if either side is, else float32: twice the speed of float64 for float32 codes, whose
  // rounding (about 1e-7 of ||b||^2) only reorders near-ties; small integers stay exact in both.
  const auto dtype = train_x.scalar_type() == torch::kFloat64 || test_x.scalar_type() == torch::kFloat64
                         ? torch::kFloat64
                         : torch::kFloat32;
  const auto b = train_x.detach().to(dtype).contiguous();  // [N, m]
  const auto bt = b.t().contiguous();                      // [m, N]
  const auto b_sq = b.square().sum(1).unsqueeze(0);        // [1, N]
  const auto a_all = test_x.detach().to(dtype);            // [T, m]
  std::vector<torch::Tensor> nearest;  // per block: [rows, k_max] training indices, in neighbour order
  // One distance buffer for all blocks: a fresh [rows, N] each time costs more in page faults than
  // the product that fills it.
  auto buffer = torch::empty({std::min(options.block_rows, t_count), b.size(0)}, b.options());
  for (int64_t start = 0; start < t_count; start += options.block_rows) {
    const int64_t rows = std::min(options.block_rows, t_count - start);
    auto d = buffer.narrow(0, 0, rows);  // [rows, N]
    torch::addmm_out(d, b_sq, a_all.narrow(0, start, rows), bt, /*beta=*/1, /*alpha=*/-2);
    auto index = torch::empty({rows, k_max}, torch::kInt64);
    if (dtype == torch::kFloat64)
      nearest_in_rows<double>(d, k_max, index);
    else
      nearest_in_rows<float>(d, k_max, index);
    nearest.push_back(index);
  }
  return torch::cat(nearest, 0);
}

torch::Tensor knn_predict(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                          const std::vector<int64_t>& ks, const KnnOptions& options) {
  check_inputs(train_x, train_y, test_x, ks, "knn_predict");
  torch::NoGradGuard no_grad;
  const int64_t t_count = test_x.size(0);
  const int64_t k_max = *std::max_element(ks.begin(), ks.end());
  const int64_t num_classes = train_y.max().item<int64_t>() + 1;
  const auto nearest = knn_neighbours(train_x, test_x, k_max, options);
  return knn_vote(train_y.index_select(0, nearest.view(-1)).view({t_count, k_max}), ks, num_classes);
}

torch::Tensor knn_vote(const torch::Tensor& labels, const std::vector<int64_t>& ks, int64_t num_classes) {
  const int64_t t_count = labels.size(0);
  std::vector<torch::Tensor> predictions;
  for (const int64_t k : ks) {
    const auto lab = labels.narrow(1, 0, k);  // [T, k]
    const auto votes = torch::zeros({t_count, num_classes}, torch::kInt64).scatter_add_(1, lab, torch::ones_like(lab));
    // Each class's first rank among the k neighbours (k if it has none): written from the back.
    auto first = torch::full({t_count, num_classes}, k, torch::kInt64);
    for (int64_t j = k - 1; j >= 0; --j) first.scatter_(1, lab.narrow(1, j, 1), j);
    // More votes wins outright (a vote is worth k + 1 > any rank gap); then the earlier first rank.
    predictions.push_back((votes * (k + 1) - first).argmax(1));
  }
  return torch::stack(predictions);  // [K, T]
}

torch::Tensor knn_predict_reference(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                    const torch::Tensor& test_x, const std::vector<int64_t>& ks) {
  check_inputs(train_x, train_y, test_x, ks, "knn_predict_reference");
  const auto b = train_x.detach().to(torch::kFloat64).contiguous();
  const auto a = test_x.detach().to(torch::kFloat64).contiguous();
  const auto y = train_y.contiguous();
  const auto ba = b.accessor<double, 2>();
  const auto aa = a.accessor<double, 2>();
  const auto ya = y.accessor<int64_t, 1>();
  const int64_t n = b.size(0), t_count = a.size(0), m = b.size(1);
  const int64_t num_classes = y.max().item<int64_t>() + 1;

  auto out = torch::empty({static_cast<int64_t>(ks.size()), t_count}, torch::kInt64);
  auto oa = out.accessor<int64_t, 2>();
  std::vector<std::pair<double, int64_t>> neighbours(static_cast<size_t>(n));
  for (int64_t i = 0; i < t_count; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t c = 0; c < m; ++c) s += (aa[i][c] - ba[j][c]) * (aa[i][c] - ba[j][c]);
      neighbours[j] = {s, j};
    }
    std::sort(neighbours.begin(), neighbours.end());  // by distance, then by index
    for (size_t q = 0; q < ks.size(); ++q) {
      const int64_t k = ks[q];
      std::vector<int64_t> votes(static_cast<size_t>(num_classes), 0);
      for (int64_t j = 0; j < k; ++j) ++votes[ya[neighbours[j].second]];
      const int64_t most = *std::max_element(votes.begin(), votes.end());
      // The first neighbour whose class has the most votes names the winner.
      for (int64_t j = 0; j < k; ++j) {
        if (votes[ya[neighbours[j].second]] == most) {
          oa[q][i] = ya[neighbours[j].second];
          break;
        }
      }
    }
  }
  return out;
}

KnnResult knn_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                       const torch::Tensor& test_y, const std::vector<int64_t>& ks, const KnnOptions& options) {
  check_inputs(train_x, train_y, test_x, ks, "knn_accuracy");
  TORCH_CHECK(test_y.dim() == 1 && test_y.size(0) == test_x.size(0), "knn_accuracy: expected test labels of shape [",
              test_x.size(0), "], got ", test_y.sizes());
  TORCH_CHECK(test_y.scalar_type() == torch::kInt64, "knn_accuracy: expected int64 test labels, got ",
              test_y.scalar_type());
  KnnResult result;
  result.ks = ks;
  result.predictions = knn_predict(train_x, train_y, test_x, ks, options);
  for (int64_t q = 0; q < static_cast<int64_t>(ks.size()); ++q)
    result.accuracy.push_back(result.predictions[q].eq(test_y).to(torch::kFloat64).mean().item<double>());
  return result;
}

}  // namespace matvae
