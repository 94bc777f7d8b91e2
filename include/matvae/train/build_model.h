// The model a run's settings describe, with its initial weights drawn reproducibly.
#pragma once

#include <optional>

#include "matvae/models/vae.h"
#include "matvae/train/config.h"

namespace matvae {

/// The Vae of `config` for inputs of `pixels` values, its initial weights drawn from LibTorch's
/// global generator, seeded with `seed` if given. A lock keeps models built at the same moment on
/// other threads (the experiment's parallel jobs) from drawing from that stream in between.
Vae build_model(const TrainConfig& config, int64_t pixels, std::optional<uint64_t> seed = std::nullopt);

}  // namespace matvae
