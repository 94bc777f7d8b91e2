// The IDX file format (LeCun's MNIST format), without LibTorch: bytes in, shape + buffer out.
// Only unsigned-byte arrays are read (magic 0x0000080D, D = number of dimensions); all
// integers are big-endian. The header is checked against the buffer size before any
// allocation, so a tiny file that claims 10^9 images is an error, not a huge allocation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace matvae {

/// An IDX array of unsigned bytes: dims = {count, ...}, data holds prod(dims) bytes row-major.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

/// The magic numbers we accept: images are [N, H, W], labels are [N].
constexpr uint32_t kIdxMagicImages = 0x00000803;
constexpr uint32_t kIdxMagicLabels = 0x00000801;

/// Parses an in-memory IDX buffer that must carry `expected_magic`. `name` is used in errors.
/// Throws matvae::Error on a short header, a wrong magic or a size that disagrees with the header.
IdxArray parse_idx(const uint8_t* bytes, size_t size, uint32_t expected_magic,
                   const std::string& name);

/// Reads an IDX file from disk, raw or gzip-compressed (detected by its magic, whatever the name).
/// A compressed file is inflated only up to the size its header declares.
IdxArray read_idx(const std::filesystem::path& path, uint32_t expected_magic);

/// Serialises an array to IDX bytes (used by the data fetcher and by tests).
std::vector<uint8_t> encode_idx(const IdxArray& array, uint32_t magic);

}  // namespace matvae
