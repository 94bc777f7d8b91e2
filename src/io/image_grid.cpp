// PNG grids via stb_image_write, encoded in memory and written atomically.
#include "matvae/io/image_grid.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>

#include <vector>

#include "matvae/util/file_io.h"

namespace matvae {

void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t rows, int64_t cols,
                    int64_t height, int64_t width) {
  TORCH_CHECK(images.dim() == 2 && images.size(0) == rows * cols && images.size(1) == height * width,
              "image grid: expected [", rows * cols, ", ", height * width, "] images, got ", images.sizes());
  constexpr int64_t kGap = 2;
  const int64_t W = cols * width + (cols + 1) * kGap, H = rows * height + (rows + 1) * kGap;
  std::vector<uint8_t> canvas(static_cast<size_t>(W * H), 128);
  const auto px = (images.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255.0f).round().to(torch::kUInt8).contiguous();
  const uint8_t* src = px.data_ptr<uint8_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const uint8_t* img = src + (r * cols + c) * height * width;
      for (int64_t y = 0; y < height; ++y) {
        uint8_t* dst = canvas.data() + (kGap + r * (height + kGap) + y) * W + kGap + c * (width + kGap);
        std::copy(img + y * width, img + (y + 1) * width, dst);
      }
    }
  std::vector<uint8_t> png;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* out = static_cast<std::vector<uint8_t>*>(ctx);
        out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &png, static_cast<int>(W), static_cast<int>(H), 1, canvas.data(), static_cast<int>(W));
  write_file_atomic(path, png.data(), png.size());
}

}  // namespace matvae
