// NumPy .npy files (format 1.0) for handing tensors to Python: codes, labels, embeddings.
// Writes float32, int64 and uint8 arrays of any rank in C order; reads the same back.
#pragma once

#include <torch/torch.h>

#include <filesystem>

namespace matvae {

/// Writes `t` (float32 '<f4', int64 '<i8' or uint8 '|u1'; any shape, any device or layout) as a
/// C-order .npy file, atomically. The header is padded so that data starts at a multiple of 64
/// bytes, as NumPy does. Throws c10::Error for another dtype, matvae::Error naming the path if it
/// cannot be written.
void write_npy(const std::filesystem::path& path, const torch::Tensor& t);

/// Reads a .npy file of one of those dtypes (versions 1.0 to 3.0, C order) into a CPU tensor of
/// the stored shape. Throws matvae::Error naming the file for a bad magic or version, a header
/// that does not parse, fortran_order True, another dtype, or data bytes that disagree with the
/// shape.
torch::Tensor read_npy(const std::filesystem::path& path);

}  // namespace matvae
