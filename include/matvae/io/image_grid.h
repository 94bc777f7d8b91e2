// Grayscale image grids written as PNG (stb_image_write), atomically.
#pragma once

#include <torch/torch.h>

#include <filesystem>

namespace matvae {

/// images: [rows * cols, H * W] intensities in [0, 1], row-major by grid cell. Cells are separated
/// by a 2-pixel mid-grey border. Throws matvae::Error naming the path if it cannot be written.
void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t rows, int64_t cols,
                    int64_t height, int64_t width);

}  // namespace matvae
