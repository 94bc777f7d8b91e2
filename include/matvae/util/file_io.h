// Whole-file reads (plain or gzip, with a size cap) and atomic writes (temporary file, fsync,
// rename), so that an interrupted write never leaves a file that looks finished.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace matvae {

/// Reads a whole file. Throws matvae::Error naming the file if it is missing, a directory or
/// unreadable.
std::vector<uint8_t> read_file(const std::filesystem::path& path);

/// True if the bytes start with the gzip magic (1f 8b).
bool is_gzip(const std::vector<uint8_t>& bytes);

/// Decompresses a gzip (or zlib) stream into at most `max_bytes` bytes; more output, or a corrupt or
/// truncated stream, throws matvae::Error naming `name`. Memory grows with the real output only.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, uint64_t max_bytes,
                            const std::string& name);

/// The first (up to) `prefix_bytes` bytes of a gzip stream; for reading a header cheaply.
std::vector<uint8_t> gunzip_prefix(const std::vector<uint8_t>& compressed, uint64_t prefix_bytes,
                                   const std::string& name);

/// Writes `bytes` to `path` atomically: a sibling temporary file is written, flushed to disk and
/// renamed over `path`. On failure the temporary is removed, `path` is untouched, and
/// matvae::Error names the path and the reason (e.g. "No space left on device").
void write_file_atomic(const std::filesystem::path& path, const void* data, size_t size);
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

/// Removes the temporaries ("<name>.tmp<digits>") that write_file_atomic leaves when the process is
/// killed mid-write, among the files directly in `dir` whose <name> `is_ours` accepts.
void remove_stale_temporaries(const std::filesystem::path& dir,
                              const std::function<bool(const std::string& name)>& is_ours);

}  // namespace matvae
