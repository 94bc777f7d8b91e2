// The elementwise core of the MMD over every Matryoshka prefix (loss_mmd_prefixes, mmd.h) on CPU
// float32, one row of the pair matrix at a time: from each column block's squared norms and Gram
// matrix, every prefix's squared distances (summed over blocks), kernel values and weighted sums in
// one pass; and back, the gradient with respect to each block's squared distances in one more. The
// matrix products stay with the BLAS; mmd.cpp does them and splits the rows among threads.
//
// Plain C++ without LibTorch: its file is compiled with -ffast-math, which lets GCC vectorise the
// kernels' exp through glibc's vector maths library (libmvec), 8 floats at a time with AVX2.
#pragma once

#include <cstdint>

namespace matvae {

/// One training batch's pair problem: T = n + m points (n codes, then m prior draws), K prefixes.
struct MmdPairs {
  int64_t points = 0;  // T
  int64_t codes = 0;   // n; the m = T - n prior draws follow them
  int64_t prefixes = 0;  // K
  bool imq = false;       // inverse multiquadric C / (C + d2); else gaussian exp(-d2 / scale)
  bool unbiased = false;  // within-sample diagonals weigh 0
  const float* scale = nullptr;  // [K]: the kernel's scale of each prefix (mmd.cpp: kernel_scale)
  const float* sq = nullptr;     // [K, T]: each block's squared norms
  // The rows of the pair matrix that are kept: all T, or those of one rank's share (R of them).
  int64_t stored_rows = 0;       // R
  const float* gram = nullptr;   // [K, R, T]: each block's Gram matrix, its stored rows
  float* kernel = nullptr;       // [K, R, T]: written by the forward pass, read by the backward one
};

/// Rows [begin, end), stored from row `stored_at` on: the kernel values of every prefix (into
/// pairs.kernel) and, per row and prefix, sum_j w_ij k(i, j) into row_sums [R, K], where w is the
/// estimator's weight of the pair (1/n^2 or 1/(n(n-1)) within the codes, likewise within the draws,
/// -1/(nm) across). The MMD^2 of prefix k is the sum of column k over all T rows.
void mmd_pair_rows_forward(const MmdPairs& pairs, int64_t begin, int64_t end, int64_t stored_at, double* row_sums);

/// Rows [begin, end), stored from `stored_at` on: given dL/dMMD^2 of each prefix (grad [K]),
/// dL/d(block b's squared distance) into dblock [K, R, T]: zero where the forward pass clamped the
/// block's distance to 0.
void mmd_pair_rows_backward(const MmdPairs& pairs, const float* grad, int64_t begin, int64_t end, int64_t stored_at,
                            float* dblock);

}  // namespace matvae
