// libFuzzer target for the IDX reader: parse_idx on the raw bytes (both magics), read_idx on them as
// a file (so gzip input takes the real gzip path), read_idx on a valid gzip stream of them (so the
// header-first inflation and its caps see arbitrary IDX content), and gunzip/gunzip_prefix caps.
// Every input must give a result or a matvae::Error; anything else (a crash, a sanitizer report,
// another exception, a result that breaks an invariant) is a finding.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "matvae/data/idx.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

/// What a successful parse promises: the magic's dimension count, no zero dimension after the
/// first, exactly prod(dims) bytes, and that encoding gives back the very bytes.
void check_array(const matvae::IdxArray& a, uint32_t magic, const uint8_t* raw, size_t size) {
  require(a.dims.size() == (magic & 0xff));
  uint64_t n = 1;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    require(a.dims[d] >= 0 && (d == 0 || a.dims[d] > 0));
    n *= static_cast<uint64_t>(a.dims[d]);
  }
  require(n == a.data.size());
  if (raw) require(matvae::encode_idx(a, magic) == std::vector<uint8_t>(raw, raw + size));
}

std::vector<uint8_t> gzip(const uint8_t* data, size_t size) {
  z_stream zs{};
  require(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, size) + 64);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  require(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

/// An in-memory file that read_idx opens by name, rewritten for every input.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("matvae-fuzz-idx", 0)), path_("/proc/self/fd/" + std::to_string(fd_)) {
    require(fd_ >= 0);
  }
  const std::string& write(const std::vector<uint8_t>& bytes) {
    require(ftruncate(fd_, 0) == 0);
    require(pwrite(fd_, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

void try_read_file(MemFile& file, const std::vector<uint8_t>& bytes, uint32_t magic) {
  try {
    const matvae::IdxArray a = matvae::read_idx(file.write(bytes), magic);
    check_array(a, magic, nullptr, 0);
  } catch (const matvae::Error& e) {
    require(std::string(e.what()).find('\n') == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile file;
  for (uint32_t magic : {matvae::kIdxMagicImages, matvae::kIdxMagicLabels}) {
    try {
      check_array(matvae::parse_idx(data, size, magic, "fuzz"), magic, data, size);
    } catch (const matvae::Error& e) {
      require(std::string(e.what()).find('\n') == std::string::npos);
    }
  }
  const std::vector<uint8_t> bytes(data, data + size);
  const std::vector<uint8_t> gz = gzip(data, size);
  const uint32_t magic = size > 3 && data[3] == 1 ? matvae::kIdxMagicLabels : matvae::kIdxMagicImages;
  try_read_file(file, bytes, magic);
  try_read_file(file, gz, magic);

  // The caps: gunzip never returns more than it was allowed, gunzip_prefix exactly a prefix.
  const uint64_t cap = size % 257, whole_cap = uint64_t{1} << 16;
  for (const auto* in : {&bytes, &gz}) {
    std::vector<uint8_t> whole;
    try {
      whole = matvae::gunzip(*in, whole_cap, "fuzz");
      require(whole.size() <= whole_cap);
      if (in == &gz) require(whole == bytes);
    } catch (const matvae::Error&) {
      require(in != &gz || size > whole_cap);  // our own valid stream inflates, if allowed to
    }
    try {
      const auto head = matvae::gunzip_prefix(*in, cap, "fuzz");
      require(head.size() <= cap);
      if (!whole.empty() || in == &gz)
        require(head.size() == std::min<uint64_t>(cap, whole.size()) &&
                std::equal(head.begin(), head.end(), whole.begin()));
    } catch (const matvae::Error&) {
    }
  }
  return 0;
}
