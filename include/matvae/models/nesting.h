// The nesting list m_1 < ... < m_K = D of a Matryoshka code: its default and its check, without
// LibTorch, so that the run settings (and their fuzzer) use the same rule and messages as the models.
#pragma once

#include <cstdint>
#include <vector>

namespace matvae {

/// 2, 4, 8, ... (powers of two below `latent`), then `latent` itself: {latent} for latent <= 2.
std::vector<int64_t> default_nesting(int64_t latent);

/// Throws matvae::UsageError unless nesting strictly increases, is positive, and ends at `latent`.
void check_nesting(const std::vector<int64_t>& nesting, int64_t latent);

}  // namespace matvae
