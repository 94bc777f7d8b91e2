// The .npy format; see npy_format.h.
#include "matvae/io/npy_format.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "matvae/util/error.h"

namespace matvae {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;  // NumPy pads the header so that data start on a 64-byte boundary

const char* npy_descr(NpyType t) {
  switch (t) {
    case NpyType::kFloat32: return "<f4";
    case NpyType::kInt64: return "<i8";
    case NpyType::kUInt8: return "|u1";
  }
  return "";
}

/// Parses the header dict of one file; every failure is a matvae::Error naming that file.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string name) : text_(std::move(text)), name_(std::move(name)) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
  };

  Header parse() {
    Header h;
    std::map<std::string, bool> seen;
    expect('{');
    for (;;) {
      skip_space();
      if (eat('}')) break;
      const std::string key = string_literal();
      if (seen[key]) fail("key '" + key + "' appears twice");
      seen[key] = true;
      expect(':');
      if (key == "descr")
        h.descr = string_literal();
      else if (key == "fortran_order")
        h.fortran_order = boolean();
      else if (key == "shape")
        h.shape = int_tuple();
      else
        fail("unexpected key '" + key + "'");
      skip_space();
      if (eat(',')) continue;
      expect('}');
      break;
    }
    skip_space();
    if (pos_ != text_.size()) fail("text after the closing brace");
    for (const char* key : {"descr", "fortran_order", "shape"})
      if (!seen[key]) fail(std::string("no '") + key + "' key");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(name_ + ": malformed .npy header: " + why + " (at character " + std::to_string(pos_) + ")");
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) return ++pos_, true;
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a quoted string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string s = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<std::string, bool>{"True", true}, {"False", false}})
      if (text_.compare(pos_, word.size(), word) == 0) return pos_ += word.size(), value;
    fail("expected True or False");
  }
  std::vector<int64_t> int_tuple() {
    std::vector<int64_t> dims;
    expect('(');
    for (;;) {
      skip_space();
      if (eat(')')) break;
      size_t digits = 0;
      int64_t v = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (++digits > 18) fail("dimension too large");
        v = v * 10 + (text_[pos_++] - '0');
      }
      if (digits == 0) fail("expected a non-negative integer dimension");
      eat('L');  // Python 2 wrote long integers with a suffix
      dims.push_back(v);
      if (eat(',')) continue;
      expect(')');
      break;
    }
    return dims;
  }

  std::string text_, name_;
  size_t pos_ = 0;
};

}  // namespace

size_t npy_item_size(NpyType type) { return type == NpyType::kFloat32 ? 4 : type == NpyType::kInt64 ? 8 : 1; }

std::vector<uint8_t> encode_npy(NpyType type, const std::vector<int64_t>& dims, const void* data, size_t nbytes) {
  std::string shape = "(";
  for (size_t d = 0; d < dims.size(); ++d) shape += (d ? ", " : "") + std::to_string(dims[d]);
  shape += dims.size() == 1 ? ",)" : ")";
  std::string header = std::string("{'descr': '") + npy_descr(type) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic, version, 2-byte length, dict, spaces, newline: a multiple of kAlign bytes in all.
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((unpadded + kAlign - 1) / kAlign * kAlign - unpadded, ' ');
  header += '\n';
  if (header.size() > 65535) throw Error("encode_npy: header too long for format 1.0");
  std::vector<uint8_t> bytes(kMagicSize + 4 + header.size() + nbytes);
  std::memcpy(bytes.data(), kMagic, kMagicSize);
  bytes[6] = 1, bytes[7] = 0;  // version 1.0
  bytes[8] = static_cast<uint8_t>(header.size() & 0xff), bytes[9] = static_cast<uint8_t>(header.size() >> 8);
  std::memcpy(bytes.data() + 10, header.data(), header.size());
  if (nbytes) std::memcpy(bytes.data() + 10 + header.size(), data, nbytes);
  return bytes;
}

NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size < kMagicSize + 4 || std::memcmp(bytes, kMagic, kMagicSize) != 0)
    throw Error(name + ": not a .npy file (no \\x93NUMPY magic at the start)");
  const int major = bytes[6], minor = bytes[7];
  // Version 1.0 stores the header length in 2 bytes; 2.0 and 3.0 (a UTF-8 header) in 4.
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    throw Error(name + ": unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (size < kMagicSize + 2 + len_bytes) throw Error(name + ": truncated .npy header");
  uint64_t header_len = 0;
  for (size_t k = 0; k < len_bytes; ++k) header_len |= static_cast<uint64_t>(bytes[8 + k]) << (8 * k);
  const uint64_t data_start = kMagicSize + 2 + len_bytes + header_len;
  if (data_start > size)
    throw Error(name + ": truncated: header declares " + std::to_string(header_len) + " bytes, file has " +
                std::to_string(size) + " in all");

  const auto header =
      HeaderParser(std::string(bytes + kMagicSize + 2 + len_bytes, bytes + data_start), name).parse();
  if (header.fortran_order)
    throw Error(name + ": fortran_order True is not supported; save a C-order array (np.ascontiguousarray)");
  NpyArray a;
  if (header.descr == "<f4")
    a.type = NpyType::kFloat32;
  else if (header.descr == "<i8")
    a.type = NpyType::kInt64;
  else if (header.descr == "|u1" || header.descr == "<u1" || header.descr == "u1")
    a.type = NpyType::kUInt8;
  else if (!header.descr.empty() && header.descr[0] == '>')
    throw Error(name + ": unsupported dtype '" + header.descr + "' (big-endian); save it little-endian (arr.astype('<" +
                header.descr.substr(1) + "'))");
  else
    throw Error(name + ": unsupported dtype '" + header.descr + "'; expected '<f4', '<i8' or '|u1'");

  // The data size the shape needs, without overflow (a zero dimension makes any other one valid),
  // checked against the file before anything is allocated.
  const uint64_t have = size - data_start, item = npy_item_size(a.type);
  uint64_t need = item;
  bool overflow = false;
  if (std::find(header.shape.begin(), header.shape.end(), 0) != header.shape.end()) need = 0;
  for (const int64_t d : header.shape) {
    if (need == 0) break;
    overflow = need > UINT64_MAX / static_cast<uint64_t>(d);
    if (overflow) break;
    need *= static_cast<uint64_t>(d);
  }
  if (overflow || need != have) {
    std::string shape;
    for (const int64_t d : header.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    throw Error(name + ": shape (" + shape + ") of '" + header.descr + "' needs " +
                (overflow ? "more than 2^64" : std::to_string(need)) + " data bytes, file has " + std::to_string(have) +
                (overflow || need > have ? " (truncated?)" : ""));
  }
  a.shape = header.shape;
  a.data.assign(bytes + data_start, bytes + size);
  return a;
}

}  // namespace matvae
