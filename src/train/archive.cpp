// LibTorch archives inside the integrity envelope of util/checked_file.h.
#include "matvae/train/archive.h"

#include <sstream>

#include "matvae/util/checked_file.h"
#include "matvae/util/error.h"

namespace matvae {

void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  std::ostringstream payload;
  archive.save_to(payload);
  write_checked_file(path, payload.str());
}

void load_archive(torch::serialize::InputArchive& archive, const std::filesystem::path& path) {
  std::istringstream in(read_checked_file(path, "checkpoint"));
  try {
    archive.load_from(in);
  } catch (const c10::Error& e) {
    throw Error(path.string() + ": cannot read checkpoint: " + e.what_without_backtrace());
  }
}

}  // namespace matvae
