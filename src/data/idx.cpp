// IDX parsing and encoding; see idx.h for the format and the checks.
#include "matvae/data/idx.h"

#include <limits>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace {

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void write_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

/// Header size and payload size declared by a header; throws on a bad magic or overflow.
struct Header {
  size_t header_bytes;
  uint64_t payload_bytes;
  std::vector<int64_t> dims;
};

Header parse_header(const uint8_t* bytes, size_t size, uint32_t expected_magic, const std::string& name) {
  if (size < 4) throw Error(name + ": truncated: " + std::to_string(size) + " bytes, too short for an IDX header");
  const uint32_t magic = read_be32(bytes);
  if (magic != expected_magic)
    throw Error(name + ": wrong magic number " + hex32(magic) + ", expected " + hex32(expected_magic) +
                (expected_magic == kIdxMagicImages ? " (u8 images, 3 dimensions)" : " (u8 labels, 1 dimension)"));
  const size_t ndim = magic & 0xff;
  Header h;
  h.header_bytes = 4 + 4 * ndim;
  if (size < h.header_bytes)
    throw Error(name + ": truncated: header needs " + std::to_string(h.header_bytes) + " bytes, file has " +
                std::to_string(size));
  uint64_t total = 1;
  for (size_t d = 0; d < ndim; ++d) {
    const uint32_t n = read_be32(bytes + 4 + 4 * d);
    if (d > 0 && n == 0) throw Error(name + ": dimension " + std::to_string(d) + " is 0");
    if (n > 0 && total > std::numeric_limits<uint64_t>::max() / n)
      throw Error(name + ": header dimensions overflow");
    total *= n;
    h.dims.push_back(static_cast<int64_t>(n));
  }
  h.payload_bytes = total;
  return h;
}

}  // namespace

IdxArray parse_idx(const uint8_t* bytes, size_t size, uint32_t expected_magic, const std::string& name) {
  const Header h = parse_header(bytes, size, expected_magic, name);
  const uint64_t have = size - h.header_bytes;
  if (have < h.payload_bytes)
    throw Error(name + ": truncated: header declares " + std::to_string(h.payload_bytes) +
                " data bytes, file has " + std::to_string(have));
  if (have > h.payload_bytes)
    throw Error(name + ": " + std::to_string(have - h.payload_bytes) +
                " unexpected bytes after the data the header declares");
  IdxArray out;
  out.dims = h.dims;
  out.data.assign(bytes + h.header_bytes, bytes + size);
  return out;
}

IdxArray read_idx(const std::filesystem::path& path, uint32_t expected_magic) {
  const std::string name = path.string();
  std::vector<uint8_t> bytes = read_file(path);
  if (is_gzip(bytes)) {
    // Inflate just the header first, then allow exactly what it declares (plus one byte so that
    // trailing garbage is detected). Deflate cannot exceed ~1032:1, which bounds the claim.
    const std::vector<uint8_t> head = gunzip_prefix(bytes, 4 + 4 * 255, name);
    uint64_t limit = 1 << 20;
    if (head.size() >= 4) {
      const size_t ndim = read_be32(head.data()) & 0xff;
      if (head.size() >= 4 + 4 * ndim) {
        const Header h = parse_header(head.data(), head.size(), expected_magic, name);
        const uint64_t max_possible = static_cast<uint64_t>(bytes.size()) * 1100 + 1024;
        if (h.payload_bytes > max_possible)
          throw Error(name + ": header declares " + std::to_string(h.payload_bytes) +
                      " data bytes, more than a " + std::to_string(bytes.size()) +
                      "-byte gzip file can hold (truncated or corrupt)");
        limit = h.header_bytes + h.payload_bytes + 1;
      }
    }
    bytes = gunzip(bytes, limit, name);
  }
  return parse_idx(bytes.data(), bytes.size(), expected_magic, name);
}

std::vector<uint8_t> encode_idx(const IdxArray& array, uint32_t magic) {
  std::vector<uint8_t> out;
  out.reserve(4 + 4 * array.dims.size() + array.data.size());
  write_be32(out, magic);
  for (int64_t d : array.dims) write_be32(out, static_cast<uint32_t>(d));
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

}  // namespace matvae
