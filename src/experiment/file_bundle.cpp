// Packing and unpacking finished work's files; see file_bundle.h.
#include "matvae/experiment/file_bundle.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

bool is_temporary(const std::string& name) { return name.find(".tmp") != std::string::npos; }

void add_file(nlohmann::json& files, const fs::path& root, const fs::path& file) {
  const std::vector<uint8_t> bytes = read_file(file);
  files[fs::relative(file, root).generic_string()] = nlohmann::json::binary(bytes);
}

}  // namespace

std::string pack_files(const fs::path& root, const std::vector<fs::path>& paths) {
  nlohmann::json files = nlohmann::json::object();
  for (const fs::path& p : paths) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      add_file(files, root, p);
    } else if (fs::is_directory(p, ec)) {
      for (const auto& entry : fs::directory_iterator(p))
        if (entry.is_regular_file() && !is_temporary(entry.path().filename().string())) add_file(files, root, entry.path());
    }
  }
  const std::vector<uint8_t> cbor = nlohmann::json::to_cbor(files);
  return std::string(cbor.begin(), cbor.end());
}

void unpack_files(const fs::path& root, const std::string& bundle) {
  nlohmann::json files;
  try {
    files = nlohmann::json::from_cbor(bundle);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("a bundle of files from another rank is damaged: ") + e.what());
  }
  if (!files.is_object()) throw Error("a bundle of files from another rank is damaged: not a map of files");
  std::vector<std::string> names;
  for (const auto& [name, bytes] : files.items()) {
    const fs::path rel(name);
    const bool inside = !rel.empty() && rel.is_relative() &&
                        std::none_of(rel.begin(), rel.end(), [](const fs::path& part) { return part == ".."; });
    if (!inside || !bytes.is_binary())
      throw Error("a bundle of files from another rank names '" + name + "', which is not a file under " + root.string());
    names.push_back(name);
  }
  // checkpoint.pt marks a finished run: it comes after the rest of its folder.
  std::stable_partition(names.begin(), names.end(),
                        [](const std::string& n) { return fs::path(n).filename() != "checkpoint.pt"; });
  for (const std::string& name : names) {
    const fs::path path = root / name;
    fs::create_directories(path.parent_path());
    const auto& bytes = files[name].get_binary();
    write_file_atomic(path, bytes.data(), bytes.size());
  }
}

}  // namespace matvae
