// The MMD's pair loops over every prefix; see mmd_pair_sums.h. Compiled with -ffast-math (CMake):
// keep this file free of anything that tests for NaN or infinity.
#include "matvae/losses/mmd_pair_sums.h"

#include <cmath>
#include <vector>

namespace matvae {
namespace {

/// The estimator's weights of the pairs of row i, one for j among the codes, one among the draws.
struct RowWeights {
  float to_codes, to_draws, self;  // self: the diagonal pair's weight (0 for the unbiased estimator)
};

RowWeights row_weights(const MmdPairs& p, int64_t i) {
  const double n = static_cast<double>(p.codes), m = static_cast<double>(p.points - p.codes);
  const double within_codes = p.unbiased ? 1.0 / (n * (n - 1.0)) : 1.0 / (n * n);
  const double within_draws = p.unbiased ? 1.0 / (m * (m - 1.0)) : 1.0 / (m * m);
  const double across = -1.0 / (n * m);  // both triangles: -2 mean k(x, y) split over (i, j) and (j, i)
  const bool is_code = i < p.codes;
  const double same = is_code ? within_codes : within_draws;
  return {static_cast<float>(is_code ? within_codes : across), static_cast<float>(is_code ? across : within_draws),
          static_cast<float>(p.unbiased ? 0.0 : same)};
}

// The two loops vectorise over j: one clone for AVX2 machines, one for any x86-64.
// Row i of the pair matrix is kept in row `at` of the stored rows (gram, kernel, dblock).
__attribute__((target_clones("avx2", "default"))) void forward_row(const MmdPairs& p, int64_t i, int64_t at,
                                                                     float* acc, double* sums) {
  const int64_t T = p.points, n = p.codes, R = p.stored_rows;
  const RowWeights w = row_weights(p, i);
  for (int64_t j = 0; j < T; ++j) acc[j] = 0.0f;
  for (int64_t k = 0; k < p.prefixes; ++k) {
    const float* sq = p.sq + k * T;
    const float* g = p.gram + (k * R + at) * T;
    float* kv = p.kernel + (k * R + at) * T;
    const float sqi = sq[i], s = p.scale[k], inv = 1.0f / s;
    for (int64_t j = 0; j < T; ++j) {
      const float d = sqi + sq[j] - 2.0f * g[j];
      acc[j] += d > 0.0f ? d : 0.0f;  // rounding can take a distance just below 0
    }
    if (p.imq) {
      for (int64_t j = 0; j < T; ++j) kv[j] = s / (s + acc[j]);
    } else {
      for (int64_t j = 0; j < T; ++j) kv[j] = std::exp(-acc[j] * inv);
    }
    float to_codes = 0.0f, to_draws = 0.0f;
    for (int64_t j = 0; j < n; ++j) to_codes += kv[j];
    for (int64_t j = n; j < T; ++j) to_draws += kv[j];
    sums[k] = static_cast<double>(w.to_codes) * to_codes + static_cast<double>(w.to_draws) * to_draws +
              static_cast<double>(w.self - (i < n ? w.to_codes : w.to_draws)) * kv[i];
  }
}

__attribute__((target_clones("avx2", "default"))) void backward_row(const MmdPairs& p, const float* grad, int64_t i,
                                                                      int64_t at, float* carry, float* dblock) {
  const int64_t T = p.points, n = p.codes, R = p.stored_rows;
  const RowWeights w = row_weights(p, i);
  for (int64_t j = 0; j < T; ++j) carry[j] = 0.0f;
  // Prefix k's distance is the sum of blocks 0..k, so block b's gradient sums prefixes b..K-1.
  for (int64_t k = p.prefixes - 1; k >= 0; --k) {
    const float* sq = p.sq + k * T;
    const float* g = p.gram + (k * R + at) * T;
    const float* kv = p.kernel + (k * R + at) * T;
    float* out = dblock + (k * R + at) * T;
    const float s = p.scale[k], gk = grad[k];
    // dk/dd2: gaussian -k / s, imq -k^2 / s; times the pair's weight and dL/dMMD^2_k.
    const float to_codes = -gk * w.to_codes / s, to_draws = -gk * w.to_draws / s;
    const float diag_fix = -gk * (w.self - (i < n ? w.to_codes : w.to_draws)) / s;
    if (p.imq) {
      for (int64_t j = 0; j < n; ++j) carry[j] += to_codes * kv[j] * kv[j];
      for (int64_t j = n; j < T; ++j) carry[j] += to_draws * kv[j] * kv[j];
      carry[i] += diag_fix * kv[i] * kv[i];
    } else {
      for (int64_t j = 0; j < n; ++j) carry[j] += to_codes * kv[j];
      for (int64_t j = n; j < T; ++j) carry[j] += to_draws * kv[j];
      carry[i] += diag_fix * kv[i];
    }
    const float sqi = sq[i];
    for (int64_t j = 0; j < T; ++j) out[j] = sqi + sq[j] - 2.0f * g[j] > 0.0f ? carry[j] : 0.0f;
  }
}

}  // namespace

void mmd_pair_rows_forward(const MmdPairs& pairs, int64_t begin, int64_t end, int64_t stored_at, double* row_sums) {
  std::vector<float> acc(static_cast<size_t>(pairs.points));
  for (int64_t i = begin, at = stored_at; i < end; ++i, ++at)
    forward_row(pairs, i, at, acc.data(), row_sums + at * pairs.prefixes);
}

void mmd_pair_rows_backward(const MmdPairs& pairs, const float* grad, int64_t begin, int64_t end, int64_t stored_at,
                            float* dblock) {
  std::vector<float> carry(static_cast<size_t>(pairs.points));
  for (int64_t i = begin, at = stored_at; i < end; ++i, ++at) backward_row(pairs, grad, i, at, carry.data(), dblock);
}

}  // namespace matvae
