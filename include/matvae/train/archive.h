// Integrity-checked LibTorch archives for everything matvae writes and later reads back
// (checkpoints, resume state). The file is a short text header — magic, payload size and
// SHA-256 — followed by the archive bytes; it is written atomically and verified before use,
// so a truncated or damaged file is reported, never silently loaded.
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
