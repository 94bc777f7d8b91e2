// LibTorch archives (checkpoints, resume state) in matvae's integrity envelope
// (util/checked_file.h): written atomically, verified before use, so a truncated or damaged file
// is reported, never silently loaded.
#pragma once

#include <torch/torch.h>

#include <filesystem>

namespace matvae {

/// Serialises `archive` and writes it atomically to `path`.
void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path);

/// Verifies `path` (magic, size, checksum) and loads it into `archive`. Throws matvae::Error naming
/// the file and what is wrong with it.
void load_archive(torch::serialize::InputArchive& archive, const std::filesystem::path& path);

}  // namespace matvae
