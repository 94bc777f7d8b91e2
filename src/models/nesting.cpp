// The nesting list's default and checks; see nesting.h.
#include "matvae/models/nesting.h"

#include <string>

#include "matvae/util/error.h"

namespace matvae {

std::vector<int64_t> default_nesting(int64_t latent) {
  std::vector<int64_t> nesting;
  for (int64_t m = 2; m < latent; m *= 2) nesting.push_back(m);
  nesting.push_back(latent);
  return nesting;
}

void check_nesting(const std::vector<int64_t>& nesting, int64_t latent) {
  if (nesting.empty()) throw UsageError("nesting list is empty");
  for (size_t i = 0; i < nesting.size(); ++i) {
    if (nesting[i] <= 0) throw UsageError("nesting size " + std::to_string(nesting[i]) + " is not positive");
    if (i > 0 && nesting[i] <= nesting[i - 1])
      throw UsageError("nesting list must strictly increase, got " + std::to_string(nesting[i - 1]) + " then " +
                       std::to_string(nesting[i]));
  }
  if (nesting.back() != latent)
    throw UsageError("the last nesting size " + std::to_string(nesting.back()) + " must equal the latent size " +
                     std::to_string(latent));
}

}  // namespace matvae
