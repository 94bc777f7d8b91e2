// The one integrity envelope of everything matvae writes and later reads back: checkpoints, resume
// state and the experiment's cached evaluations. A file is a short text header (magic, payload
// size, SHA-256 of the payload) followed by the payload; it is written atomically and verified
// before use, so a truncated, damaged or foreign file is reported, never silently used.
#pragma once

#include <filesystem>
#include <string>

namespace matvae {

/// Writes header + `payload` atomically to `path`. Throws Error naming the path on failure.
void write_checked_file(const std::filesystem::path& path, const std::string& payload);

/// Reads `path`, checks its header, size and checksum, and returns the payload. Errors name the
/// path and call the file a `what` ("checkpoint", "cached result"); `hint` ends each message
/// (e.g. "; delete it to recompute").
std::string read_checked_file(const std::filesystem::path& path, const std::string& what,
                              const std::string& hint = "");

}  // namespace matvae
