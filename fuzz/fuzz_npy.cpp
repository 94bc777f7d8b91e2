// libFuzzer target for the .npy reader (io/npy_format.h), the reader of the feature matrices users
// bring: every input must give an array or a matvae::Error with a message; a parsed array must hold
// exactly prod(shape) items, and encoding it again must parse back to the same array.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "matvae/io/npy_format.h"
#include "matvae/util/error.h"

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  matvae::NpyArray a;
  try {
    a = matvae::parse_npy(data, size, "fuzz.npy");
  } catch (const matvae::Error& e) {
    require(e.what()[0] != '\0');
    return 0;
  }
  uint64_t items = 1;
  for (const int64_t d : a.shape) {
    require(d >= 0);
    items *= static_cast<uint64_t>(d);
  }
  require(a.data.size() == items * matvae::npy_item_size(a.type));
  const auto again = matvae::encode_npy(a.type, a.shape, a.data.data(), a.data.size());
  const matvae::NpyArray b = matvae::parse_npy(again.data(), again.size(), "round-trip.npy");
  require(b.type == a.type && b.shape == a.shape && b.data == a.data);
  return 0;
}
