// libFuzzer target for the run settings: TOML text -> apply_toml_text -> resolve. Every input must
// give a config or a matvae::UsageError with a message; a config that resolves must survive its own
// round trip (to_toml, parse, resolve) with the same text and hash, as resume relies on.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "matvae/train/config.h"
#include "matvae/util/error.h"

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  matvae::TrainConfig config;
  try {
    matvae::apply_toml_text(config, text, "fuzz.toml");
    matvae::resolve(config);
  } catch (const matvae::UsageError& e) {
    require(!matvae::first_line(e.what()).empty());
    return 0;
  }
  const std::string once = matvae::to_toml(config);
  matvae::TrainConfig back;
  try {
    matvae::apply_toml_text(back, once, "round-trip");
    matvae::resolve(back);
  } catch (const matvae::UsageError&) {
    std::abort();  // matvae wrote a config it cannot read back
  }
  require(matvae::to_toml(back) == once);
  require(matvae::config_hash(back) == matvae::config_hash(config));
  return 0;
}
