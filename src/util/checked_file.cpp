// The integrity envelope; see checked_file.h. The header is three newline-terminated lines:
// "MATVAE-ARCHIVE 1", the payload's size in bytes and its SHA-256 in hex.
#include "matvae/util/checked_file.h"

#include <algorithm>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"

namespace matvae {
namespace {
constexpr const char* kMagic = "MATVAE-ARCHIVE 1";
constexpr size_t kMaxHeaderLine = 128;  // a header line longer than this is no header of ours
}  // namespace

void write_checked_file(const std::filesystem::path& path, const std::string& payload) {
  std::string file = std::string(kMagic) + "\n" + std::to_string(payload.size()) + "\n" +
                     sha256_hex(payload.data(), payload.size()) + "\n";
  file += payload;
  write_file_atomic(path, file);
}

std::string read_checked_file(const std::filesystem::path& path, const std::string& what, const std::string& hint) {
  const std::vector<uint8_t> bytes = read_file(path);
  const std::string name = path.string();
  const auto fail = [&](const std::string& why) { throw Error(name + ": " + why + hint); };
  if (bytes.empty()) fail("is empty (a damaged " + what + "): not a matvae " + what);
  size_t pos = 0;
  std::string lines[3];
  for (auto& line : lines) {
    const auto* begin = bytes.data() + pos;
    const auto* end = bytes.data() + std::min(bytes.size(), pos + kMaxHeaderLine);
    const auto* nl = std::find(begin, end, uint8_t{'\n'});
    if (nl == end) fail("not a matvae " + what + " (bad or missing header)");
    line.assign(begin, nl);
    pos += static_cast<size_t>(nl - begin) + 1;
  }
  if (lines[0] != kMagic) fail("not a matvae " + what + " (bad magic)");
  uint64_t size = 0;
  try {
    size = std::stoull(lines[1]);
  } catch (const std::exception&) {
    fail("damaged " + what + " header (size)");
  }
  const uint64_t have = bytes.size() - pos;
  if (have != size)
    fail("truncated or damaged " + what + ": header says " + std::to_string(size) + " bytes, file has " +
         std::to_string(have));
  if (sha256_hex(bytes.data() + pos, have) != lines[2]) fail("damaged " + what + ": checksum mismatch");
  return std::string(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.end());
}

}  // namespace matvae
