// `matvae eval` and `matvae encode`: the evaluation and the codes of one finished run folder.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "matvae/data/dataset.h"

namespace matvae {

/// `matvae eval`: every metric of a finished run at `dims` (default: its nesting list; a plain model
/// is evaluated truncated at dims up to its latent size), on `data_dir` (default: the run's data).
/// Writes run_dir/eval.json and returns it.
nlohmann::ordered_json evaluate_run(const std::filesystem::path& run_dir, std::vector<int64_t> dims, uint64_t seed = 0,
                                    const std::filesystem::path& data_dir = {});

/// `matvae retrieve`: the adaptive uses of a finished run's code (eval/adaptive.h), the test images
/// of `data_dir` (default: the run's data) querying its training images: retrieval at every prefix
/// (a plain model's code truncated to 2, 4, ..., D) and through funnels, and the classification
/// cascade. Writes run_dir/adaptive.json and returns it.
nlohmann::ordered_json retrieve_run(const std::filesystem::path& run_dir, const std::filesystem::path& data_dir = {},
                                    uint64_t seed = 0);

/// `matvae encode`: writes mu(x)[:, :m] of a split as float32 [N, m] to `out` and the labels as
/// int64 [N] beside it (codes.npy -> codes.labels.npy). Returns the labels path.
std::filesystem::path write_codes_npy(const std::filesystem::path& run_dir, const std::filesystem::path& data_dir,
                                      Split split, int64_t m, const std::filesystem::path& out);

}  // namespace matvae
