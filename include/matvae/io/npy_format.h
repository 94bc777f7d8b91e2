// The .npy format (NumPy, versions 1.0 to 3.0) without LibTorch: bytes in, type + shape + data out,
// and back. The header is a Python dict literal; the parser reads only the subset NumPy writes
// ({'descr': str, 'fortran_order': bool, 'shape': tuple of ints}) and checks the shape against the
// file size before it allocates, so that the fuzzer (fuzz/fuzz_npy.cpp) can build it with clang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace matvae {

/// The element types matvae reads and writes: float32 '<f4', int64 '<i8' and uint8 '|u1'.
enum class NpyType { kFloat32, kInt64, kUInt8 };
size_t npy_item_size(NpyType type);

/// A C-order array; data holds prod(shape) items, little-endian.
struct NpyArray {
  NpyType type = NpyType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

/// Parses a whole .npy file held in memory; `name` is used in errors. Throws matvae::Error naming it
/// for a bad magic or version, a header that does not parse, fortran_order True, another dtype (a
/// big-endian one says so), or data bytes that disagree with the shape.
NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name);

/// The bytes of a format 1.0 file for `shape` of `type`, the header padded so that the data start at
/// a multiple of 64 bytes as NumPy does. `data` holds nbytes = prod(shape) * item size bytes.
std::vector<uint8_t> encode_npy(NpyType type, const std::vector<int64_t>& shape, const void* data, size_t nbytes);

}  // namespace matvae
