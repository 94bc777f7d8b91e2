// The calling thread's compute settings: LibTorch's intra-op thread count and subnormal flushing.
#pragma once

#include <cstdint>

namespace matvae {

/// Sets LibTorch's intra-op threads for the calling thread: n, or every core for 0. It also makes
/// this thread and its OpenMP team (LibTorch's and OpenBLAS's workers) flush subnormal floats to
/// zero: a long training drives some logits so negative that their sigmoids and gradients go
/// subnormal, and every product that touches one then runs several times slower.
void set_threads(int64_t n);

}  // namespace matvae
