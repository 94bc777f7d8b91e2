// Integrity header + atomic write around torch::serialize archives.
#include "matvae/train/archive.h"

#include <sstream>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace {
constexpr const char* kMagic = "MATVAE-ARCHIVE 1";
}

void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  std::ostringstream payload_stream;
  archive.save_to(payload_stream);
  const std::string payload = payload_stream.str();
  std::string file = std::string(kMagic) + "\n" + std::to_string(payload.size()) + "\n" +
                     sha256_hex(payload.data(), payload.size()) + "\n";
  file += payload;
  write_file_atomic(path, file);
}

void load_archive(torch::serialize::InputArchive& archive, const std::filesystem::path& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  const std::string name = path.string();
  // Header: three newline-terminated lines.
  size_t pos = 0;
  std::string lines[3];
  for (auto& line : lines) {
    const auto* begin = bytes.data() + pos;
    const auto* end = bytes.data() + std::min(bytes.size(), pos + 128);
    const auto* nl = std::find(begin, end, uint8_t{'\n'});
    if (nl == end) throw Error(name + ": not a matvae checkpoint (bad or missing header)");
    line.assign(begin, nl);
    pos += (nl - begin) + 1;
  }
  if (lines[0] != kMagic) throw Error(name + ": not a matvae checkpoint (bad magic)");
  uint64_t size = 0;
  try {
    size = std::stoull(lines[1]);
  } catch (const std::exception&) {
    throw Error(name + ": damaged checkpoint header (size)");
  }
  const uint64_t have = bytes.size() - pos;
  if (have != size)
    throw Error(name + ": truncated or damaged checkpoint: header says " + std::to_string(size) + " bytes, file has " +
                std::to_string(have));
  if (sha256_hex(bytes.data() + pos, have) != lines[2]) throw Error(name + ": damaged checkpoint: checksum mismatch");
  std::istringstream in(std::string(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.end()));
  try {
    archive.load_from(in);
  } catch (const c10::Error& e) {
    throw Error(name + ": cannot read checkpoint: " + e.what_without_backtrace());
  }
}

}  // namespace matvae
