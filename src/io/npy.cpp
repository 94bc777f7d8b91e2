// .npy writing and reading of tensors, through the LibTorch-free format of npy_format.h.
#include "matvae/io/npy.h"

#include <cstring>

#include "matvae/io/npy_format.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace {

bool little_endian_host() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 1;
}

}  // namespace

void write_npy(const std::filesystem::path& path, const torch::Tensor& t) {
  TORCH_CHECK(little_endian_host(), "write_npy: big-endian hosts are not supported");
  NpyType type;
  switch (t.scalar_type()) {
    case torch::kFloat32: type = NpyType::kFloat32; break;
    case torch::kInt64: type = NpyType::kInt64; break;
    case torch::kUInt8: type = NpyType::kUInt8; break;
    default: TORCH_CHECK(false, "write_npy ", path.string(), ": expected a float32, int64 or uint8 tensor, got ", t.scalar_type());
  }
  const auto data = t.detach().to(torch::kCPU).contiguous();
  const auto bytes = encode_npy(type, data.sizes().vec(), data.data_ptr(),
                                static_cast<size_t>(data.numel()) * data.element_size());
  write_file_atomic(path, bytes.data(), bytes.size());
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  TORCH_CHECK(little_endian_host(), "read_npy: big-endian hosts are not supported");
  const std::vector<uint8_t> bytes = read_file(path);
  const NpyArray a = parse_npy(bytes.data(), bytes.size(), path.string());
  const auto dtype = a.type == NpyType::kFloat32 ? torch::kFloat32 : a.type == NpyType::kInt64 ? torch::kInt64 : torch::kUInt8;
  auto t = torch::empty(a.shape, torch::TensorOptions().dtype(dtype));
  if (!a.data.empty()) std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t;
}

}  // namespace matvae
