// The nesting list m_1 < ... < m_K = D of a Matryoshka code, checked without LibTorch so that the
// config parser (and its fuzzer) can use the same check and messages as the models.
#pragma once

#include <cstdint>
#include <vector>

namespace matvae {

/// Throws matvae::UsageError unless nesting strictly increases, is positive, and ends at `latent`.
void check_nesting(const std::vector<int64_t>& nesting, int64_t latent);

}  // namespace matvae
