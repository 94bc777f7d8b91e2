// Exact k-NN classification: the blocked fast path (matmul distances, one pass per row keeping the
// k best in (distance, index) order, a vote) and the float64 double-loop reference it is tested against.
#include "matvae/eval/knn.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

// The distance scan, once for AVX2 and once for any x86-64, chosen when the program loads.
#define MATVAE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))

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

// The distances a row turns away, sixteen floats (eight doubles) at a time: two 32-byte vectors
// compared with the bar (AVX2 where the CPU has it; GCC's vector types, as the compiler did not
// vectorise the plain loop), and a scalar look only inside a block that holds a candidate. A
// distance is ||b||^2 - 2 a.b, summed here from the product's -2 a.b and b_sq, so that the product
// need not copy b_sq into its output first.
template <typename T>
inline int64_t first_below_in(const T* ab, const T* b_sq, int64_t from, int64_t n, T bar) {
  typedef T Vec __attribute__((vector_size(32)));
  constexpr int64_t kLanes = 32 / sizeof(T), kBlock = 2 * kLanes;
  const Vec bars = Vec{} + bar;
  Vec x0, s0, x1, s1;  // memcpy: the rows need not be aligned to 32 bytes
  int64_t j = from;
  for (; j + kBlock <= n; j += kBlock) {
    std::memcpy(&x0, ab + j, sizeof(Vec));
    std::memcpy(&s0, b_sq + j, sizeof(Vec));
    std::memcpy(&x1, ab + j + kLanes, sizeof(Vec));
    std::memcpy(&s1, b_sq + j + kLanes, sizeof(Vec));
    const auto below = (x0 + s0 < bars) | (x1 + s1 < bars);
    uint64_t words[4];
    std::memcpy(words, &below, sizeof words);
    if ((words[0] | words[1] | words[2] | words[3]) == 0) continue;
    for (int64_t i = 0;; ++i)
      if (ab[j + i] + b_sq[j + i] < bar) return j + i;
  }
  for (; j < n; ++j)
    if (ab[j] + b_sq[j] < bar) return j;
  return n;
}

/// The first j in [from, n) with ab[j] + b_sq[j] < bar (never for a NaN), else n.
MATVAE_VECTOR_CLONES int64_t first_below(const float* ab, const float* b_sq, int64_t from, int64_t n, float bar) {
  return first_below_in(ab, b_sq, from, n, bar);
}
MATVAE_VECTOR_CLONES int64_t first_below(const double* ab, const double* b_sq, int64_t from, int64_t n, double bar) {
  return first_below_in(ab, b_sq, from, n, bar);
}

/// One test row's k best so far, as the training columns go by tile after tile. A distance below the
/// k-th best so far (the bar) is appended to a buffer of 2k, which, when full, keeps its k best
/// (nth_element) and lowers the bar to its k-th. Most distances are turned away by that one
/// comparison (first_below); one that gets in costs O(1) amortised, not the k moves of an ordered
/// insert or the log k of a heap (a funnel's short list keeps 200 at a small prefix, where many get in).
template <typename T>
class NearestSoFar {
 public:
  explicit NearestSoFar(int64_t k) : k_(k) { kept_.reserve(static_cast<size_t>(2 * k)); }

  /// Columns [first, first + n) of the row: ab[j] = -2 a.b_j, b_sq[j] = ||b_j||^2.
  void scan(const T* ab, const T* b_sq, int64_t first, int64_t n) {
    int64_t j = 0;
    for (; j < n && size() < k_; ++j) {  // the row's first k columns get in unseen
      kept_.emplace_back(ab[j] + b_sq[j], first + j);
      if (size() == k_) bar_ = std::max_element(kept_.begin(), kept_.end())->first;
    }
    if (size() < k_) return;
    // An equal distance never displaces a kept one: that one has the lower index.
    for (j = first_below(ab, b_sq, j, n, bar_); j < n; j = first_below(ab, b_sq, j + 1, n, bar_)) {
      kept_.emplace_back(ab[j] + b_sq[j], first + j);
      if (size() == 2 * k_) keep_best();
    }
  }

  /// The k nearest columns, by distance and then by the lower index, to out[0, k).
  void write(int64_t* out) {
    keep_best();
    std::sort(kept_.begin(), kept_.end());
    for (int64_t j = 0; j < k_; ++j) out[j] = kept_[static_cast<size_t>(j)].second;
  }

 private:
  int64_t size() const { return static_cast<int64_t>(kept_.size()); }
  void keep_best() {
    if (size() <= k_) return;
    std::nth_element(kept_.begin(), kept_.begin() + (k_ - 1), kept_.end());
    kept_.resize(static_cast<size_t>(k_));
    bar_ = kept_.back().first;
  }

  int64_t k_;
  T bar_ = 0;
  std::vector<std::pair<T, int64_t>> kept_;  // (distance, index): pairs order as neighbours do
};

/// The k nearest training rows of each test row of a [rows, m], b_neg2_t = -2 b^T [m, N], b_sq [N]
/// -> out [rows, k]. The distances go by tiles of `tile` training rows through `buffer` [rows,
/// tile]: each tile's product is scanned while it is still in the core's cache, rather than written
/// out whole and read back from memory.
template <typename T>
void nearest_rows(const torch::Tensor& a, const torch::Tensor& b_neg2_t, const T* b_sq, int64_t k, int64_t tile,
                  torch::Tensor& buffer, int64_t* out) {
  const int64_t rows = a.size(0), n = b_neg2_t.size(1);
  std::vector<NearestSoFar<T>> nearest(static_cast<size_t>(rows), NearestSoFar<T>(k));
  for (int64_t first = 0; first < n; first += tile) {
    const int64_t cols = std::min(tile, n - first);
    auto ab = buffer.narrow(0, 0, rows).narrow(1, 0, cols);  // rows `tile` apart
    torch::mm_out(ab, a, b_neg2_t.narrow(1, first, cols));
    const T* base = ab.data_ptr<T>();
    for (int64_t r = 0; r < rows; ++r)
      nearest[static_cast<size_t>(r)].scan(base + r * ab.stride(0), b_sq + first, first, cols);
  }
  for (int64_t r = 0; r < rows; ++r) nearest[static_cast<size_t>(r)].write(out + r * k);
}

}  // namespace

torch::Tensor knn_neighbours(const torch::Tensor& train_x, const torch::Tensor& test_x, int64_t k_max,
                             const KnnOptions& options) {
  check_codes(train_x, test_x, "knn_neighbours");
  TORCH_CHECK(k_max >= 1 && k_max <= train_x.size(0), "knn_neighbours: expected k in [1, N = ", train_x.size(0),
              "], got ", k_max);
  TORCH_CHECK(options.block_rows >= 1, "knn_neighbours: expected block_rows >= 1, got ", options.block_rows);
  TORCH_CHECK(options.tile_columns >= 1, "knn_neighbours: expected tile_columns >= 1, got ", options.tile_columns);
  torch::NoGradGuard no_grad;
  const int64_t t_count = test_x.size(0);

  // float64 if either side is, else float32: twice the speed of float64 for float32 codes, whose
  // rounding (about 1e-7 of ||b||^2) only reorders near-ties; small integers stay exact in both.
  const auto dtype = train_x.scalar_type() == torch::kFloat64 || test_x.scalar_type() == torch::kFloat64
                         ? torch::kFloat64
                         : torch::kFloat32;
  const auto b = train_x.detach().to(dtype).contiguous();  // [N, m]
  // -2 b^T: scaling by a power of two is exact, so ab + b_sq rounds as the product -2 a.b added to
  // b_sq always did (addmm's b_sq - 2 a.b).
  const auto b_neg2_t = (b.t() * -2).contiguous();  // [m, N]
  const auto b_sq = b.square().sum(1).contiguous();  // [N]
  const auto a_all = test_x.detach().to(dtype);      // [T, m]
  auto nearest = torch::empty({t_count, k_max}, torch::kInt64);
  // Blocks of test rows across the threads, each with its own product buffer and one-thread
  // products: small tiles split across threads cost more in hand-offs than they gain. Blocks shrink
  // so that every thread gets one.
  const int64_t threads = at::get_num_threads();
  const int64_t block = std::max<int64_t>(1, std::min(options.block_rows, (t_count + threads - 1) / threads));
  const int64_t blocks = (t_count + block - 1) / block;
  const int64_t tile = std::min(options.tile_columns, b.size(0));
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    auto buffer = torch::empty({block, tile}, b.options());
    for (int64_t i = begin; i < end; ++i) {
      const int64_t start = i * block, rows = std::min(block, t_count - start);
      const auto a = a_all.narrow(0, start, rows).contiguous();
      int64_t* out = nearest.data_ptr<int64_t>() + start * k_max;
      if (dtype == torch::kFloat64)
        nearest_rows<double>(a, b_neg2_t, b_sq.data_ptr<double>(), k_max, tile, buffer, out);
      else
        nearest_rows<float>(a, b_neg2_t, b_sq.data_ptr<float>(), k_max, tile, buffer, out);
    }
  });
  return nearest;
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
