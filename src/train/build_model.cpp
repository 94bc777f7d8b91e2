// Building a run's model; see build_model.h.
#include "matvae/train/build_model.h"

#include <mutex>

namespace matvae {

Vae build_model(const TrainConfig& config, int64_t pixels, std::optional<uint64_t> seed) {
  static std::mutex global_generator;
  std::lock_guard<std::mutex> lock(global_generator);
  if (seed) torch::manual_seed(*seed);
  VaeOptions o(pixels, config.latent);
  o.hidden(config.hidden).nesting(config.nesting).decoder(config.decoder);
  return Vae(o);
}

}  // namespace matvae
