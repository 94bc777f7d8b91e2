// Shared test helpers: a self-removing temporary folder (and fixture), byte-file writing, gzip for
// test data, a seeded fixture, tensor closeness checks, a tiny synthetic IDX data folder, and a
// runner for the matvae binary (waiting, or spawned in the background). Header-only; everything is
// inline in namespace matvae_test.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "matvae/data/idx.h"
#include "matvae/util/subprocess.h"
#include "test_paths.h"

namespace matvae_test {
namespace fs = std::filesystem;

/// A fresh folder under the system temp directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "matvae-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder from " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const fs::path& name) const { return path_ / name; }

 private:
  fs::path path_;
};

/// A fixture whose tests get their own temporary folder, dir(), removed after each test.
class TempDirTest : public ::testing::Test {
 protected:
  const fs::path& dir() const { return tmp_.path(); }

 private:
  TempDir tmp_;
};

/// A fixture that seeds LibTorch's global generator, so random inputs are the same on every run.
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(kSeed); }
  static constexpr uint64_t kSeed = 1234;
};

/// Writes `bytes` to `path` (creating or replacing it); throws if that fails.
inline void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write test file " + path.string());
}

inline void write_bytes(const fs::path& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

/// Reads a whole file as bytes (empty if it cannot be opened).
inline std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// gzip-compresses `bytes` (a gzip header, not zlib's), as `gzip` would.
inline std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& bytes, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  // 15 + 16: a gzip wrapper around the deflate stream.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&zs, bytes.size()) + 64);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  out.resize(zs.total_out);
  return out;
}

/// zlib-format (not gzip) compression of `bytes`.
inline std::vector<uint8_t> zlib_bytes(const std::vector<uint8_t>& bytes) {
  uLongf size = compressBound(bytes.size());
  std::vector<uint8_t> out(size);
  if (compress(out.data(), &size, bytes.data(), bytes.size()) != Z_OK) throw std::runtime_error("compress failed");
  out.resize(size);
  return out;
}

/// Runs `f` and returns the message of the `E` it throws. Fails the test (and returns "") if it
/// throws nothing or something else, so `EXPECT_TRUE(contains(error_message<E>(...), "x"))` is safe.
template <class E, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  } catch (...) {
    ADD_FAILURE() << "threw something that is not a std::exception";
    return "";
  }
  ADD_FAILURE() << "expected an exception, nothing was thrown";
  return "";
}

/// Whether `text` contains `part`; for EXPECT_TRUE with a readable failure message.
inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected \"" << part << "\" in:\n" << text;
}

/// Same shape and every element within `tol` (absolute); the failure names the worst element.
inline ::testing::AssertionResult tensors_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                                double tol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor (actual " << actual.defined() << ", expected "
                                         << expected.defined() << ")";
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " differs from expected "
                                         << expected.sizes();
  if (actual.numel() == 0) return ::testing::AssertionSuccess();
  const auto a = actual.detach().to(torch::kCPU, torch::kFloat64);
  const auto e = expected.detach().to(torch::kCPU, torch::kFloat64);
  const auto diff = (a - e).abs().reshape({-1});
  const bool nan_mismatch = (a.isnan() != e.isnan()).any().item<bool>();
  const auto worst = diff.nan_to_num(0.0).argmax().item<int64_t>();
  const double max_diff = diff[worst].item<double>();
  if (!nan_mismatch && max_diff <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |actual - expected| = " << max_diff << " > " << tol
                                       << " at flat index " << worst << " (actual "
                                       << a.reshape({-1})[worst].item<double>() << ", expected "
                                       << e.reshape({-1})[worst].item<double>() << ")"
                                       << (nan_mismatch ? "; NaNs differ" : "");
}

/// EXPECT-style closeness check; wrap the call in SCOPED_TRACE to tell several apart.
inline void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double tol) {
  EXPECT_TRUE(tensors_close(actual, expected, tol));
}

/// An [n, h, w] u8 image array with deterministic, varied pixel values (a hash of index and seed).
inline matvae::IdxArray make_idx_images(int64_t n, int64_t h, int64_t w, uint32_t seed = 0) {
  matvae::IdxArray a{{n, h, w}, std::vector<uint8_t>(static_cast<size_t>(n * h * w))};
  uint32_t x = 2463534242u ^ (seed * 2654435761u);
  for (auto& v : a.data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<uint8_t>(x >> 24);
  }
  return a;
}

/// An [n] u8 label array: labels[i] = (i * 7 + seed) % num_classes.
inline matvae::IdxArray make_idx_labels(int64_t n, int64_t num_classes, uint32_t seed = 0) {
  matvae::IdxArray a{{n}, std::vector<uint8_t>(static_cast<size_t>(n))};
  for (int64_t i = 0; i < n; ++i) a.data[i] = static_cast<uint8_t>((i * 7 + seed) % num_classes);
  return a;
}

/// One split's four arrays, for write_idx_folder.
struct IdxSplit {
  matvae::IdxArray images, labels;
};

/// Writes a data folder with the four standard file names (each with ".gz" if `gz`).
inline void write_idx_folder(const fs::path& dir, const IdxSplit& train, const IdxSplit& test, bool gz = false) {
  fs::create_directories(dir);
  const auto put = [&](const std::string& name, const matvae::IdxArray& a, uint32_t magic) {
    const auto bytes = matvae::encode_idx(a, magic);
    if (gz)
      write_bytes(dir / (name + ".gz"), gzip_bytes(bytes));
    else
      write_bytes(dir / name, bytes);
  };
  put("train-images-idx3-ubyte", train.images, matvae::kIdxMagicImages);
  put("train-labels-idx1-ubyte", train.labels, matvae::kIdxMagicLabels);
  put("t10k-images-idx3-ubyte", test.images, matvae::kIdxMagicImages);
  put("t10k-labels-idx1-ubyte", test.labels, matvae::kIdxMagicLabels);
}

/// A small valid folder: n_train and n_test images of h x w with labels cycling over num_classes.
inline void write_small_idx_folder(const fs::path& dir, int64_t n_train = 30, int64_t n_test = 12, int64_t h = 6,
                                   int64_t w = 5, int64_t num_classes = 10, bool gz = false) {
  write_idx_folder(dir, {make_idx_images(n_train, h, w, 1), make_idx_labels(n_train, num_classes, 1)},
                   {make_idx_images(n_test, h, w, 2), make_idx_labels(n_test, num_classes, 2)}, gz);
}

/// Runs the built matvae binary with `args`; returns its exit code and its stdout + stderr.
inline matvae::ProcessResult run_matvae(const std::vector<std::string>& args, const fs::path& cwd = {}) {
  std::vector<std::string> argv = {MATVAE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return matvae::run_process(argv, cwd);
}

/// Starts the built matvae binary with `args` without waiting; its stdout + stderr go to `output_file`.
/// Returns the pid (for kill and matvae::wait_process), or -1.
inline pid_t spawn_matvae(const std::vector<std::string>& args, const fs::path& output_file, const fs::path& cwd = {}) {
  std::vector<std::string> argv = {MATVAE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return matvae::spawn_process(argv, output_file, cwd);
}

/// A python3 that can import NumPy: the one on PATH, else the system one (a pyenv or venv python
/// on PATH may lack the Debian python3-numpy). Empty if there is none.
inline const std::string& numpy_python() {
  static const std::string python = [] {
    for (const std::string py : {"python3", "/usr/bin/python3"})
      if (matvae::run_process({py, "-c", "import numpy"}).exit_code == 0) return py;
    return std::string();
  }();
  return python;
}

/// Debian's python3 with python3-torch (the one on PATH may be another without it); empty if none.
inline const std::string& torch_python() {
  static const std::string python = [] {
    for (const std::string py : {"/usr/bin/python3", "python3"})
      if (matvae::run_process({py, "-c", "import torch, numpy"}).exit_code == 0) return py;
    return std::string();
  }();
  return python;
}

}  // namespace matvae_test
