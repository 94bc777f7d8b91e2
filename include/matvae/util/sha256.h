// SHA-256 of files and buffers (OpenSSL), used to verify fetched data sets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace matvae {

/// Lower-case hex SHA-256 of a buffer.
std::string sha256_hex(const void* data, size_t size);
/// Lower-case hex SHA-256 of a file's bytes, streamed. Throws matvae::Error naming the file.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace matvae
