// .npy writing and reading. The header is a Python dict literal; the reader parses only the subset
// NumPy writes ({'descr': str, 'fortran_order': bool, 'shape': tuple of ints}) and checks the
// shape against the file size before it allocates.
#include "matvae/io/npy.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;  // NumPy pads the header so that data start on a 64-byte boundary

bool little_endian_host() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 1;
}

/// The .npy type string for a supported dtype, or "" for any other.
std::string npy_descr(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "<f4";
    case torch::kInt64: return "<i8";
    case torch::kUInt8: return "|u1";
    default: return "";
  }
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

void write_npy(const std::filesystem::path& path, const torch::Tensor& t) {
  TORCH_CHECK(little_endian_host(), "write_npy: big-endian hosts are not supported");
  const std::string descr = npy_descr(t.scalar_type());
  TORCH_CHECK(!descr.empty(), "write_npy ", path.string(), ": expected a float32, int64 or uint8 tensor, got ",
              t.scalar_type());
  const auto data = t.detach().to(torch::kCPU).contiguous();

  std::string shape = "(";
  for (int64_t d = 0; d < data.dim(); ++d) shape += (d ? ", " : "") + std::to_string(data.size(d));
  shape += data.dim() == 1 ? ",)" : ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic, version, 2-byte length, dict, spaces, newline: a multiple of kAlign bytes in all.
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((unpadded + kAlign - 1) / kAlign * kAlign - unpadded, ' ');
  header += '\n';
  TORCH_CHECK(header.size() <= 65535, "write_npy ", path.string(), ": header too long for format 1.0");

  const size_t nbytes = static_cast<size_t>(data.numel()) * data.element_size();
  std::vector<uint8_t> bytes(kMagicSize + 4 + header.size() + nbytes);
  std::memcpy(bytes.data(), kMagic, kMagicSize);
  bytes[6] = 1, bytes[7] = 0;  // version 1.0
  bytes[8] = static_cast<uint8_t>(header.size() & 0xff), bytes[9] = static_cast<uint8_t>(header.size() >> 8);
  std::memcpy(bytes.data() + 10, header.data(), header.size());
  if (nbytes) std::memcpy(bytes.data() + 10 + header.size(), data.data_ptr(), nbytes);
  write_file_atomic(path, bytes.data(), bytes.size());
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  TORCH_CHECK(little_endian_host(), "read_npy: big-endian hosts are not supported");
  const std::string name = path.string();
  const std::vector<uint8_t> bytes = read_file(path);
  if (bytes.size() < kMagicSize + 4 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
    throw Error(name + ": not a .npy file (no \\x93NUMPY magic at the start)");
  const int major = bytes[6], minor = bytes[7];
  // Version 1.0 stores the header length in 2 bytes; 2.0 and 3.0 (a UTF-8 header) in 4.
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    throw Error(name + ": unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < kMagicSize + 2 + len_bytes) throw Error(name + ": truncated .npy header");
  uint64_t header_len = 0;
  for (size_t k = 0; k < len_bytes; ++k) header_len |= static_cast<uint64_t>(bytes[8 + k]) << (8 * k);
  const uint64_t data_start = kMagicSize + 2 + len_bytes + header_len;
  if (data_start > bytes.size())
    throw Error(name + ": truncated: header declares " + std::to_string(header_len) + " bytes, file has " +
                std::to_string(bytes.size()) + " in all");

  const auto header = HeaderParser(std::string(bytes.begin() + kMagicSize + 2 + len_bytes, bytes.begin() + data_start),
                                   name).parse();
  if (header.fortran_order)
    throw Error(name + ": fortran_order True is not supported; save a C-order array (np.ascontiguousarray)");
  torch::ScalarType dtype;
  if (header.descr == "<f4")
    dtype = torch::kFloat32;
  else if (header.descr == "<i8")
    dtype = torch::kInt64;
  else if (header.descr == "|u1" || header.descr == "<u1" || header.descr == "u1")
    dtype = torch::kUInt8;
  else
    throw Error(name + ": unsupported dtype '" + header.descr + "'; expected '<f4', '<i8' or '|u1'");

  // The data size the shape needs, without overflow (a zero dimension makes any other one valid),
  // checked against the file before anything is allocated.
  const uint64_t have = bytes.size() - data_start, item = torch::elementSize(dtype);
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
  auto t = torch::empty(header.shape, torch::TensorOptions().dtype(dtype));
  if (have) std::memcpy(t.data_ptr(), bytes.data() + data_start, have);
  return t;
}

}  // namespace matvae
