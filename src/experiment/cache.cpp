// Cached evaluations; see cache.h.
#include "matvae/experiment/cache.h"

#include "matvae/train/run_folder.h"
#include "matvae/util/checked_file.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/machine.h"

namespace matvae {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
namespace {

constexpr const char* kWhat = "cached result";
constexpr const char* kHint = "; delete it to recompute";
constexpr const char* kBuilds = "commits";  // not a number, so never taken for a prefix size

/// The cached evaluation in `path`; an empty object if there is none yet.
json read_cache(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  const std::string payload = read_checked_file(path, kWhat, kHint);
  json j;
  try {
    j = json::parse(payload);
  } catch (const json::exception&) {
    throw Error(path.string() + ": damaged " + kWhat + " (not JSON)" + kHint);
  }
  if (!j.is_object()) throw Error(path.string() + ": damaged " + kWhat + " (not a JSON object)" + kHint);
  return j;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

json cached_eval(const fs::path& file, const std::vector<int64_t>& dims,
                 const std::function<json(const std::vector<int64_t>&)>& compute, std::set<std::string>* by) {
  json have = read_cache(file);
  std::vector<int64_t> missing;
  for (int64_t m : dims)
    if (!have.contains(std::to_string(m))) missing.push_back(m);
  if (!missing.empty()) {
    const json fresh = compute(missing);
    for (const auto& [k, v] : fresh.items()) {
      have[k] = v;
      have[kBuilds][k] = git_commit();
    }
    fs::create_directories(file.parent_path());
    write_checked_file(file, have.dump(1) + "\n");
  }
  json out;
  for (int64_t m : dims) {
    const std::string k = std::to_string(m);
    if (!have.contains(k)) return json();  // stopped part-way: the m done are cached, the rest are not
    out[k] = have[k];
    by->insert(have.contains(kBuilds) && have[kBuilds].contains(k) ? have[kBuilds][k].get<std::string>()
                                                                     : std::string("unknown"));
  }
  return out;
}

bool cache_complete(const fs::path& file, const std::vector<int64_t>& dims) {
  try {
    const json have = read_cache(file);
    for (int64_t m : dims)
      if (!have.contains(std::to_string(m))) return false;
    return true;
  } catch (const Error&) {
    return false;
  }
}

void remove_stale_outputs(const fs::path& out, const std::vector<std::string>& datasets) {
  remove_stale_temporaries(out, [](const std::string& name) {
    return ends_with(name, ".json") || ends_with(name, ".md") || ends_with(name, ".png") || ends_with(name, ".svg");
  });
  for (const auto& dataset : datasets) {
    const fs::path dir = out / "runs" / dataset;
    remove_stale_temporaries(dir, [](const std::string& name) { return ends_with(name, ".json"); });
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code ec2;
      if (it->is_directory(ec2)) RunFolder(it->path()).remove_stale_temporaries();
    }
  }
}

}  // namespace matvae
