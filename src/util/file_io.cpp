// Whole-file reads, gzip inflation with a cap, and atomic writes.
#include "matvae/util/file_io.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "matvae/util/error.h"

namespace matvae {
namespace fs = std::filesystem;

std::vector<uint8_t> read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file");
  // A FIFO would block the read forever and a device has no size: only regular files are read.
  if (!fs::is_regular_file(path, ec)) throw Error(path.string() + ": is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size < 0) throw Error(path.string() + ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error(path.string() + ": read failed");
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

namespace {

// Inflates until the stream ends or more than `max_bytes` came out; `prefix` says whether the
// latter is the goal (return the first max_bytes) or an error.
std::vector<uint8_t> inflate_capped(const std::vector<uint8_t>& compressed, uint64_t max_bytes,
                                    const std::string& name, bool prefix) {
  z_stream zs{};
  // 15 + 32: accept both gzip and zlib headers.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw Error(name + ": cannot initialise zlib");
  zs.next_in = const_cast<Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::vector<uint8_t> out;
  constexpr size_t kChunk = size_t{1} << 20;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    const size_t old = out.size();
    // Room for one byte past the cap (to detect overflow); written so max_bytes = 2^64 - 1 cannot wrap.
    const uint64_t room = max_bytes - std::min<uint64_t>(max_bytes, old);
    const size_t chunk = static_cast<size_t>(room >= kChunk ? kChunk : room + 1);
    out.resize(old + chunk);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + (chunk - zs.avail_out));
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      const std::string why = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      if (rc == Z_BUF_ERROR) throw Error(name + ": corrupt gzip stream (truncated)");
      throw Error(name + ": corrupt gzip stream (" + why + ")");
    }
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      if (prefix) {
        out.resize(max_bytes);
        return out;
      }
      throw Error(name + ": gzip stream inflates to more than the " + std::to_string(max_bytes) +
                  " bytes its header allows");
    }
  }
  inflateEnd(&zs);
  if (out.size() > max_bytes) {
    if (prefix) {
      out.resize(max_bytes);
      return out;
    }
    throw Error(name + ": gzip stream inflates to more than the " + std::to_string(max_bytes) +
                " bytes its header allows");
  }
  return out;
}

}  // namespace

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, uint64_t max_bytes,
                            const std::string& name) {
  return inflate_capped(compressed, max_bytes, name, false);
}

std::vector<uint8_t> gunzip_prefix(const std::vector<uint8_t>& compressed, uint64_t prefix_bytes,
                                   const std::string& name) {
  return inflate_capped(compressed, prefix_bytes, name, true);
}

void write_file_atomic(const fs::path& path, const void* data, size_t size) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(path.string() + ": folder " + dir.string() + " does not exist");
  std::random_device rd;
  const fs::path tmp = path.string() + ".tmp" + std::to_string(rd() % 1000000);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path.string() + ": cannot write: " + std::strerror(errno));
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": " + what + ": " + std::strerror(err));
  };
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": close failed: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": rename failed: " + std::strerror(err));
  }
}

void write_file_atomic(const fs::path& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

void remove_stale_temporaries(const fs::path& dir, const std::function<bool(const std::string&)>& is_ours) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(".tmp");
    if (at == std::string::npos || at + 4 == name.size()) continue;
    if (!std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at) + 4, name.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    std::error_code ec2;
    if (is_ours(name.substr(0, at)) && it->is_regular_file(ec2)) fs::remove(it->path(), ec2);
  }
}

}  // namespace matvae
