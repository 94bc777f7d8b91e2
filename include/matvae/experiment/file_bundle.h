// The files of finished work, packed to travel between the ranks of a distributed experiment whose
// results folders are not one shared folder: each model a rank trains reaches rank 0's folder as
// it is (run files, resume state, cached evaluations), so that rank 0 writes the same results.json,
// figures and report as one machine would, and a rerun there finds every model finished.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace matvae {

/// The regular files of `paths` (files, or folders taken one level deep; temporaries left out),
/// each named by its path relative to `root`, in one byte string (CBOR). A missing path is skipped.
std::string pack_files(const std::filesystem::path& root, const std::vector<std::filesystem::path>& paths);

/// Writes a bundle's files under `root`, each atomically, a folder's checkpoint.pt (which marks a
/// finished run) after its other files. Throws Error for a damaged bundle or a path that would
/// leave `root`.
void unpack_files(const std::filesystem::path& root, const std::string& bundle);

}  // namespace matvae
