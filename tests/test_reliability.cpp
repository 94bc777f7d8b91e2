// The bad-input catalogue: every case runs the real matvae binary on a damaged or wrong input (IDX and
// .gz data, config files, flags, checkpoints, run folders, output paths, a full disk) and checks the
// exit status (2 usage, 1 run-time), a one-line message naming the file, flag or value, no crash or
// stack trace, and that no earlier output changed and no partial file was left.
// Then integrity checks through the library: damaged state.pt, checkpoint.pt and metrics.jsonl are
// reported, never used; a run killed before its first checkpoint resumes from the beginning.
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "matvae/experiment/experiment.h"
#include "matvae/losses/mmd.h"
#include "matvae/losses/recon.h"
#include "matvae/models/vae.h"
#include "matvae/train/archive.h"
#include "matvae/train/config.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/trainer.h"
#include "matvae/util/error.h"
#include "matvae/util/sha256.h"
#include "stop_hooks.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using matvae::TrainConfig;
using namespace matvae_test;

// --- run folders made once per test process, through the library -----------------------------

/// A small valid data folder: 60 train and 20 test images of 6 x 5, 10 classes.
void write_data(const fs::path& dir) { write_small_idx_folder(dir, 60, 20, 6, 5, 10); }

TrainConfig small_config(const fs::path& data, int64_t latent = 4) {
  TrainConfig c;
  c.model = matvae::ModelKind::kMrlMmd;
  c.data = data.string();
  c.latent = latent;
  c.hidden = {16};
  c.batch_size = 10;  // 6 steps per epoch
  c.epochs = 3;
  c.threads = 1;
  c.seed = 5;
  c.checkpoint_every = 2;
  return c;
}

/// Trains `c` into `dir`, stopping after `stop_after` steps (0: to the end).
void train_run(const TrainConfig& c, const fs::path& dir, int64_t stop_after) {
  std::atomic<bool> stop{false};
  matvae::train(c, dir, matvae_test::stop_at_step(stop, stop_after));
}

/// Run folders shared by the cases of one process (each ctest case is its own process, so they are
/// made lazily, only where needed): data/, mid/ (stopped at step 7 of 18: one metrics line, a
/// mid-epoch state.pt), done/ (finished), other/ (a finished run with latent size 3).
class Templates {
 public:
  static Templates& get() {
    static Templates t;
    return t;
  }
  fs::path data() {
    if (!fs::exists(root_ / "data")) write_data(root_ / "data");
    return root_ / "data";
  }
  fs::path mid() { return make("mid", 4, 7); }
  fs::path done() { return make("done", 4, 0); }
  fs::path other() { return make("other", 3, 0); }
  /// A finished tiny experiment on data() (rows mmd-at-m and pca, m = 2): its cached evaluations.
  fs::path experiment() {
    const fs::path out = root_ / "experiment";
    if (!fs::exists(out)) matvae::run_experiment(experiment_options(out));
    return out;
  }
  matvae::ExperimentOptions experiment_options(const fs::path& out) {
    matvae::ExperimentOptions o;
    o.profile = "tiny";
    o.datasets = {"data"};
    // Its own data: more images than a tiny experiment's batch of 128.
    const fs::path root = root_ / "experiment-data";
    if (!fs::exists(root / "data")) write_small_idx_folder(root / "data", 300, 40, 6, 5, 10);
    o.data_root = root;
    o.dims = {2};
    o.rows = {"mmd-at-m", "pca"};
    o.threads = 1;
    o.out = out;
    return o;
  }

 private:
  fs::path make(const std::string& name, int64_t latent, int64_t stop_after) {
    const fs::path dir = root_ / name;
    if (!fs::exists(dir)) train_run(small_config(data(), latent), dir, stop_after);
    return dir;
  }
  TempDir root_;
};

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

void flip_byte(const fs::path& path, size_t offset) {
  auto bytes = read_bytes(path);
  bytes.at(offset) ^= 0x5a;
  write_bytes(path, bytes);
}

std::string slurp(const fs::path& path) {
  const auto b = read_bytes(path);
  return std::string(b.begin(), b.end());
}

// --- what every case checks ---------------------------------------------------------------------

/// Every file under `dir` (relative path -> SHA-256 of its bytes; folders map to "dir", other
/// things such as FIFOs to "special").
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_symlink()) {
      out[rel] = "link";
      it.disable_recursion_pending();
    } else if (it->is_directory()) {
      out[rel] = "dir";
    } else if (it->is_regular_file()) {
      const auto b = read_bytes(it->path());
      out[rel] = matvae::sha256_hex(b.data(), b.size());
    } else {
      out[rel] = "special";
    }
  }
  return out;
}

/// No crash, uncaught exception, sanitizer report or LibTorch backtrace in the output.
::testing::AssertionResult no_crash_text(const std::string& output) {
  for (const char* bad : {"terminate called", "Exception raised from", "frame #", "Aborted", "Segmentation",
                          "what():", "core dumped", "Sanitizer", "runtime error:", "Stack trace", "stack trace"}) {
    if (output.find(bad) != std::string::npos)
      return ::testing::AssertionFailure() << "output contains \"" << bad << "\":\n" << output;
  }
  return ::testing::AssertionSuccess();
}

/// The lines of the output that are not warnings (a slow-BLAS warning may precede the error).
std::vector<std::string> message_lines(const std::string& output) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("warning: ", 0) != 0) lines.push_back(line);
  return lines;
}

/// A mount of a small tmpfs, undone on destruction; `ok()` is false where mounting is not permitted.
class TmpfsMount {
 public:
  TmpfsMount(const fs::path& at, const std::string& options) : at_(at) {
    fs::create_directories(at);
    const bool ro = options.rfind("ro,", 0) == 0;
    const std::string data = ro ? options.substr(3) : options;
    ok_ = ::mount("tmpfs", at.c_str(), "tmpfs", ro ? MS_RDONLY : 0, data.c_str()) == 0;
    if (!ok_) why_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (ok_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }

 private:
  fs::path at_;
  bool ok_ = false;
  std::string why_;
};

/// Fills the file system holding `dir` up to the last byte with one filler file.
void fill_disk(const fs::path& file) {
  std::vector<char> block(4096, 'x');
  FILE* f = std::fopen(file.c_str(), "wb");
  ASSERT_TRUE(f);
  for (size_t size = block.size(); size > 0; size /= 2)
    while (std::fwrite(block.data(), 1, size, f) == size && std::fflush(f) == 0) {
    }
  std::fclose(f);
}

// --- the catalogue ------------------------------------------------------------------------------

/// One case's world: a fresh folder (the process's working folder) and shortcuts into it.
struct Ctx {
  TempDir tmp;
  std::vector<std::unique_ptr<TmpfsMount>> mounts;
  std::string skip;                          // set by a setup that cannot run here
  std::vector<std::string> command_prefix;  // e.g. a shell that lowers a limit first
  std::vector<std::string> may_appear;      // files (relative) a failure may leave: complete ones only

  fs::path dir() const { return tmp.path(); }
  fs::path data() {  // written once; later calls return the (possibly damaged) folder
    if (!fs::exists(dir() / "data")) write_data(dir() / "data");
    return dir() / "data";
  }
  fs::path file(const std::string& name, const std::string& text = "x") {
    write_bytes(dir() / name, text);
    return dir() / name;
  }
  fs::path mid_run() {
    copy_folder(Templates::get().mid(), dir() / "run");
    return dir() / "run";
  }
  fs::path done_run() {
    copy_folder(Templates::get().done(), dir() / "run");
    return dir() / "run";
  }
  /// A small tmpfs at dir()/mnt; returns nullopt (and sets skip) where mounting is not permitted.
  std::optional<fs::path> tmpfs(const std::string& options) {
    mounts.push_back(std::make_unique<TmpfsMount>(dir() / "mnt", options));
    if (!mounts.back()->ok()) {
      skip = "cannot mount a tmpfs here (" + mounts.back()->why() + ")";
      return std::nullopt;
    }
    return dir() / "mnt";
  }
};

struct Invocation {
  std::vector<std::string> args;
  std::vector<std::string> mentions;  // the message must contain each
};

struct Case {
  std::string name;
  int exit_code;
  std::function<Invocation(Ctx&)> setup;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

/// The training flags of a valid small run on the case's data, with --out `out`.
std::vector<std::string> train_args(Ctx& c, const fs::path& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"train", "--data",    c.data().string(), "--latent", "4", "--hidden", "16",
                                "--batch-size", "10", "--epochs", "2",  "--threads", "1", "--quiet"};
  if (!out.empty()) a.insert(a.end(), {"--out", out.string()});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

/// `args` with the value of `flag` replaced.
std::vector<std::string> with(std::vector<std::string> args, const std::string& flag, const std::string& value) {
  const auto it = std::find(args.begin(), args.end(), flag);
  if (it == args.end() || it + 1 == args.end()) throw std::logic_error("no flag " + flag);
  *(it + 1) = value;
  return args;
}

std::vector<std::string> info(const fs::path& data) { return {"data", "info", "--data", data.string()}; }

std::vector<std::string> resume(const fs::path& run) { return {"train", "--resume", run.string(), "--quiet"}; }

fs::path images(const fs::path& data) { return data / "train-images-idx3-ubyte"; }
fs::path labels(const fs::path& data) { return data / "train-labels-idx1-ubyte"; }

std::vector<uint8_t> idx_bytes(uint32_t magic, std::vector<uint32_t> dims, size_t payload) {
  std::vector<uint8_t> out;
  auto be = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  be(magic);
  for (uint32_t d : dims) be(d);
  out.resize(out.size() + payload, 7);
  return out;
}

/// A file of the given bytes at `path` in place of a data file.
fs::path put(const fs::path& path, const std::vector<uint8_t>& bytes) {
  write_bytes(path, bytes);
  return path;
}

/// Rewrites the train images as .gz (removing the raw file) and returns the .gz path.
fs::path gz_images(Ctx& c, const std::function<void(std::vector<uint8_t>&)>& damage) {
  const fs::path raw = images(c.data());
  auto gz = gzip_bytes(read_bytes(raw));
  damage(gz);
  fs::remove(raw);
  return put(raw.string() + ".gz", gz);
}

std::string s(const fs::path& p) { return p.string(); }

/// `matvae experiment` with the template experiment's settings, writing to `out`.
std::vector<std::string> experiment_args(const fs::path& out, const std::string& rows = "mmd-at-m,pca",
                                         const std::string& dims = "2") {
  const auto o = Templates::get().experiment_options(out);
  return {"experiment", "--profile", "tiny", "--datasets", "data", "--data-root", o.data_root.string(),
          "--dims", dims, "--rows", rows, "--threads", "1", "--quiet", "--out", out.string()};
}

/// A copy of the template experiment in the case's folder, and the cached evaluation of its model.
struct CopiedExperiment {
  fs::path out, model_run, eval_cache;
};
CopiedExperiment copy_experiment(Ctx& c) {
  CopiedExperiment e;
  e.out = c.dir() / "results";
  copy_folder(Templates::get().experiment(), e.out);
  for (const auto& run : fs::directory_iterator(e.out / "runs" / "data"))
    if (run.is_directory())
      for (const auto& f : fs::directory_iterator(run.path()))
        if (f.path().filename().string().rfind("eval-mmd-at-m-", 0) == 0) {
          e.model_run = run.path();
          e.eval_cache = f.path();
        }
  if (e.eval_cache.empty()) throw std::logic_error("the template experiment has no cached evaluation");
  return e;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto add = [&](std::string name, int code, std::function<Invocation(Ctx&)> f) {
    v.push_back({std::move(name), code, std::move(f)});
  };

  // --- IDX and .gz data files (data info: run-time errors) ---
  add("DataFolderMissing", 1, [](Ctx& c) {
    return Invocation{info(c.dir() / "nope"), {s(c.dir() / "nope"), "does not exist"}};
  });
  add("DataFolderIsAFile", 1, [](Ctx& c) {
    const auto f = c.file("afile");
    return Invocation{info(f), {s(f), "not a folder"}};
  });
  add("DataFileMissing", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::remove(d / "t10k-labels-idx1-ubyte");
    return Invocation{info(d), {s(d / "t10k-labels-idx1-ubyte"), "no such file"}};
  });
  add("DataFileEmpty", 1, [](Ctx& c) {
    const auto d = c.data();
    return Invocation{info(d), {s(put(images(d), {})), "truncated: 0 bytes"}};
  });
  add("DataFileIsADirectory", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::remove(labels(d));
    fs::create_directory(labels(d));
    return Invocation{info(d), {s(labels(d)), "is a directory"}};
  });
  add("DataFileIsAFifo", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::remove(images(d));
    ::mkfifo(images(d).c_str(), 0644);  // reading it would block forever
    return Invocation{info(d), {s(images(d)), "not a regular file"}};
  });
  add("DataWrongMagic", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::copy_file(labels(d), images(d), fs::copy_options::overwrite_existing);
    return Invocation{info(d), {s(images(d)), "wrong magic number 0x00000801"}};
  });
  add("DataTruncated", 1, [](Ctx& c) {
    const auto d = c.data();
    auto b = read_bytes(images(d));
    b.resize(b.size() - 3);
    return Invocation{info(d), {s(put(images(d), b)), "truncated"}};
  });
  add("DataTrailingBytes", 1, [](Ctx& c) {
    const auto d = c.data();
    auto b = read_bytes(labels(d));
    b.insert(b.end(), {1, 2, 3, 4, 5});
    return Invocation{info(d), {s(put(labels(d), b)), "5 unexpected bytes"}};
  });
  add("DataHugeCountInATinyFile", 1, [](Ctx& c) {
    const auto d = c.data();
    return Invocation{info(d), {s(put(images(d), idx_bytes(0x803, {0xFFFFFFF0u, 28, 28}, 100))), "truncated"}};
  });
  add("DataDimensionsOverflow", 1, [](Ctx& c) {
    const auto d = c.data();
    return Invocation{info(d), {s(put(images(d), idx_bytes(0x803, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, 8))),
                                "overflow"}};
  });
  add("DataZeroImageHeight", 1, [](Ctx& c) {
    const auto d = c.data();
    return Invocation{info(d), {s(put(images(d), idx_bytes(0x803, {60, 0, 5}, 0))), "dimension 1 is 0"}};
  });
  add("DataNoImages", 1, [](Ctx& c) {
    const auto d = c.data();
    put(labels(d), idx_bytes(0x801, {0}, 0));
    return Invocation{info(d), {s(put(images(d), idx_bytes(0x803, {0, 6, 5}, 0))), "holds no images"}};
  });
  add("DataLabelCountMismatch", 1, [](Ctx& c) {
    const auto d = c.data();
    return Invocation{info(d), {s(put(labels(d), idx_bytes(0x801, {59}, 59))), "59 labels"}};
  });
  add("DataLabelOutOfRange", 1, [](Ctx& c) {
    const auto d = c.data();
    auto b = read_bytes(labels(d));
    b.back() = 12;
    auto args = info(d);  // counted from the labels, 13 classes would be fine: declare 10
    args.insert(args.end(), {"--classes", "10"});
    return Invocation{args, {s(put(labels(d), b)), "label 12", "outside the 10 declared classes"}};
  });
  add("DataTrainTestSizesDiffer", 1, [](Ctx& c) {
    const auto d = c.data();
    write_bytes(d / "t10k-images-idx3-ubyte", matvae::encode_idx(make_idx_images(20, 5, 6), matvae::kIdxMagicImages));
    return Invocation{info(d), {s(d), "6x5", "5x6"}};
  });
  add("GzTruncated", 1, [](Ctx& c) {
    const auto f = gz_images(c, [](std::vector<uint8_t>& b) { b.resize(b.size() / 2); });
    return Invocation{info(c.dir() / "data"), {s(f), "corrupt gzip stream"}};
  });
  add("GzFlippedByte", 1, [](Ctx& c) {
    const auto f = gz_images(c, [](std::vector<uint8_t>& b) { b[b.size() / 2] ^= 0xff; });
    return Invocation{info(c.dir() / "data"), {s(f)}};
  });
  add("GzChecksumDamaged", 1, [](Ctx& c) {
    const auto f = gz_images(c, [](std::vector<uint8_t>& b) { b[b.size() - 6] ^= 0x01; });  // the CRC-32
    return Invocation{info(c.dir() / "data"), {s(f), "corrupt gzip stream (incorrect data check)"}};
  });
  add("GzInflatesBeyondItsHeader", 1, [](Ctx& c) {
    const auto d = c.data();
    auto b = idx_bytes(0x803, {2, 6, 5}, 60);
    b.resize(b.size() + 100000, 0);  // a small "bomb": far more data than the header declares
    fs::remove(images(d));
    return Invocation{info(d), {s(put(images(d).string() + ".gz", gzip_bytes(b))), "inflates to more than"}};
  });
  add("GzEmptyStream", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::remove(labels(d));
    return Invocation{info(d), {s(put(labels(d).string() + ".gz", gzip_bytes({}))), "truncated: 0 bytes"}};
  });
  add("GzMagicOnly", 1, [](Ctx& c) {
    const auto d = c.data();
    fs::remove(labels(d));
    return Invocation{info(d), {s(put(labels(d).string() + ".gz", {0x1f, 0x8b})), "corrupt gzip stream"}};
  });

  // --- config files (train --config: usage errors) ---
  auto with_config = [](const std::string& text) {
    return [text](Ctx& c) {
      const auto f = c.file("my.toml", text);
      return Invocation{train_args(c, c.dir() / "out", {"--config", s(f)}), {s(f)}};
    };
  };
  auto also = [](std::function<Invocation(Ctx&)> f, std::vector<std::string> more) {
    return [f, more](Ctx& c) {
      Invocation i = f(c);
      i.mentions.insert(i.mentions.end(), more.begin(), more.end());
      return i;
    };
  };
  add("ConfigMissing", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--config", s(c.dir() / "none.toml")}),
                      {s(c.dir() / "none.toml"), "no such file"}};
  });
  add("ConfigIsADirectory", 2, [](Ctx& c) {
    fs::create_directory(c.dir() / "conf.toml");
    return Invocation{train_args(c, c.dir() / "out", {"--config", s(c.dir() / "conf.toml")}),
                      {s(c.dir() / "conf.toml"), "is a directory"}};
  });
  add("ConfigWrongType", 2, also(with_config("epochs = 'ten'\n"), {"'epochs' must be an integer, got a string"}));
  add("ConfigTableForAString", 2,
      also(with_config("[model]\nname = 'vae'\n"), {"'model' must be a string, got a table"}));
  add("ConfigUnknownKey", 2, also(with_config("lamda = 3\n"), {"unknown key 'lamda'"}));
  add("ConfigSyntaxError", 2, [](Ctx& c) {
    const auto f = c.file("my.toml", "latent = 4\nepochs = = 3\n");
    return Invocation{train_args(c, c.dir() / "out", {"--config", s(f)}), {s(f) + ":2:"}};
  });
  add("ConfigBinaryGarbage", 2, with_config(std::string("\xff\xfe\x00\x01\x80model = 1\n", 15)));
  add("ConfigBadValue", 2, [](Ctx& c) {
    const auto f = c.file("my.toml", "kernel = 'laplace'\n");
    return Invocation{train_args(c, c.dir() / "out", {"--config", s(f)}), {"laplace"}};
  });
  add("ConfigNonAsciiOutsideAString", 2, also(with_config("lr = 1\xc3\xa9-3\n"), {":1:7: non-ASCII character"}));
  add("ConfigNegativeSeed", 2, also(with_config("seed = -1\n"), {"'seed' must be >= 0"}));
  add("ConfigHugeLayer", 2, [](Ctx& c) {
    const auto f = c.file("my.toml", "hidden = [1000000000000]\n");
    return Invocation{{"train", "--config", s(f), "--data", s(c.data()), "--out", s(c.dir() / "out")},
                      {"hidden = 1000000000000"}};
  });
  add("ConfigEmptyMeansDefaults", 1, [](Ctx& c) {
    // An empty file is a valid TOML file: every default, including data = data/mnist, which is not here.
    const auto f = c.file("empty.toml", "");
    return Invocation{{"train", "--config", s(f), "--out", s(c.dir() / "out")}, {"data/mnist", "does not exist"}};
  });

  // --- flags (usage errors) ---
  add("FlagNotANumber", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--lr", "fast"}), {"--lr"}};
  });
  add("FlagUnknown", 2, [](Ctx& c) { return Invocation{train_args(c, c.dir() / "out", {"--bogus"}), {"--bogus"}}; });
  add("FlagNestingOrder", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--nesting", "2,8,4"}), {"strictly increase", "8 then 4"}};
  });
  add("FlagZeroEpochs", 2, [](Ctx& c) {
    return Invocation{with(train_args(c, c.dir() / "out"), "--epochs", "0"), {"epochs = 0"}};
  });
  add("FlagNegativeThreads", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--threads", "-3"}), {"--threads"}};
  });
  add("FlagSeedBeyondToml", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--seed", "18446744073709551615"}),
                      {"seed = 18446744073709551615"}};
  });
  add("FlagBatchLargerThanData", 2, [](Ctx& c) {
    return Invocation{with(train_args(c, c.dir() / "out"), "--batch-size", "500"), {"batch_size = 500"}};
  });
  add("FlagUnbiasedLastBatchOfOne", 2, [](Ctx& c) {  // 60 images in batches of 59
    return Invocation{with(train_args(c, c.dir() / "out", {"--estimator", "unbiased"}), "--batch-size", "59"),
                      {"batch_size = 59", "last batch of one"}};
  });
  add("FlagLrScheduleUnknown", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--lr-schedule", "linear"}),
                      {"lr_schedule = linear", "constant or cosine"}};
  });
  add("TrainOnOneTestImage", 1, [](Ctx& c) {
    const auto d = c.data();
    write_bytes(d / "t10k-images-idx3-ubyte", matvae::encode_idx(make_idx_images(1, 6, 5), matvae::kIdxMagicImages));
    write_bytes(d / "t10k-labels-idx1-ubyte", matvae::encode_idx(make_idx_labels(1, 10), matvae::kIdxMagicLabels));
    return Invocation{train_args(c, c.dir() / "out"), {s(d / "t10k-images-idx3-ubyte"), "at least 2"}};
  });
  add("FlagWeightsCount", 2, [](Ctx& c) {
    return Invocation{train_args(c, c.dir() / "out", {"--weights", "1,2,3"}), {"weights has 3 values"}};
  });
  add("FlagOutMissing", 2, [](Ctx& c) { return Invocation{train_args(c, {}), {"--out"}}; });
  add("FlagResumeWithOut", 2, [](Ctx& c) {
    return Invocation{{"train", "--resume", s(c.mid_run()), "--out", s(c.dir() / "x")}, {"--out"}};
  });
  add("FlagResumeWithSetting", 2, [](Ctx& c) {
    return Invocation{{"train", "--resume", s(c.mid_run()), "--lr", "0.1"}, {"--lr"}};
  });
  add("FlagResumeThreadsOutOfRange", 2, [](Ctx& c) {
    return Invocation{{"train", "--resume", s(c.mid_run()), "--threads", "100000"}, {"--threads"}};
  });

  // --- run folders and checkpoints (train --resume: run-time errors) ---
  add("ResumeFolderMissing", 1, [](Ctx& c) {
    return Invocation{resume(c.dir() / "gone"), {s(c.dir() / "gone"), "does not exist"}};
  });
  add("ResumeFolderIsAFile", 1, [](Ctx& c) {
    const auto f = c.file("run");
    return Invocation{resume(f), {s(f), "expected a run folder"}};
  });
  add("ResumeNotARunFolder", 1, [](Ctx& c) {
    fs::create_directory(c.dir() / "run");
    return Invocation{resume(c.dir() / "run"), {s(c.dir() / "run" / "config.toml"), "no such file"}};
  });
  add("StateTruncated", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    auto b = read_bytes(run / "state.pt");
    b.resize(b.size() - 100);
    write_bytes(run / "state.pt", b);
    return Invocation{resume(run), {s(run / "state.pt"), "truncated or damaged checkpoint"}};
  });
  add("StateFlippedByte", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    flip_byte(run / "state.pt", fs::file_size(run / "state.pt") / 2);
    return Invocation{resume(run), {s(run / "state.pt"), "checksum mismatch"}};
  });
  add("StateEmpty", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    write_bytes(run / "state.pt", "");
    return Invocation{resume(run), {s(run / "state.pt"), "not a matvae checkpoint"}};
  });
  add("StateIsADirectory", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    fs::remove(run / "state.pt");
    fs::create_directory(run / "state.pt");
    return Invocation{resume(run), {s(run / "state.pt"), "is a directory"}};
  });
  add("StateNotAMatvaeArchive", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    // A plain LibTorch archive, as torch::save writes it: no integrity header.
    auto b = read_bytes(run / "state.pt");
    const std::string text(b.begin(), b.end());
    size_t pos = 0;
    for (int i = 0; i < 3; ++i) pos = text.find('\n', pos) + 1;
    write_bytes(run / "state.pt", std::vector<uint8_t>(b.begin() + static_cast<std::ptrdiff_t>(pos), b.end()));
    return Invocation{resume(run), {s(run / "state.pt"), "not a matvae checkpoint"}};
  });
  add("StateValidHeaderGarbagePayload", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    const std::string payload(5000, 'z');
    write_bytes(run / "state.pt", "MATVAE-ARCHIVE 1\n5000\n" + matvae::sha256_hex(payload.data(), payload.size()) +
                                      "\n" + payload);
    return Invocation{resume(run), {s(run / "state.pt"), "cannot read checkpoint"}};
  });
  add("StateFromOtherLatentSize", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    fs::copy_file(Templates::get().other() / "state.pt", run / "state.pt", fs::copy_options::overwrite_existing);
    return Invocation{resume(run), {s(run / "state.pt"), "different config", "latent size"}};
  });
  add("StateOfAnotherModelWithMatchingHash", 1, [](Ctx& c) {
    // A forged state: the config hash of this run, the weights of a model with latent size 3.
    const auto run = c.mid_run();
    torch::serialize::InputArchive in;
    matvae::load_archive(in, Templates::get().other() / "state.pt");
    torch::serialize::OutputArchive out, model_archive;
    matvae::VaeOptions o(30, 3);
    o.hidden({16}).nesting({2, 3});
    matvae::Vae other(o);
    other->save(model_archive);
    out.write("model", model_archive);
    for (const char* key : {"rng", "progress", "train_seconds", "sums"}) {
      torch::Tensor t;
      in.read(key, t);
      out.write(key, t);
    }
    out.write("config_hash", c10::IValue(matvae::config_hash(matvae::RunFolder(run).read_config())));
    matvae::save_archive(out, run / "state.pt");
    return Invocation{resume(run), {s(run / "state.pt"), "does not fit this model"}};
  });
  add("RunConfigEdited", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    std::string text = slurp(run / "config.toml");
    text.replace(text.find("lr = "), 5, "lr = 9");
    write_bytes(run / "config.toml", text);
    return Invocation{resume(run), {s(run / "state.pt"), "different config than config.toml"}};
  });
  add("RunConfigGarbage", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    write_bytes(run / "config.toml", "latent = [[[\n");
    return Invocation{resume(run), {s(run / "config.toml"), "damaged run config"}};
  });
  add("RunConfigEmpty", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    write_bytes(run / "config.toml", "");
    return Invocation{resume(run), {s(run / "state.pt"), "different config than config.toml"}};
  });
  add("MetricsValueChanged", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    std::string text = slurp(run / "metrics.jsonl");
    size_t at = text.find("\"loss\":") + 7;
    while (!std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
    text[at] = text[at] == '1' ? '2' : '1';
    write_bytes(run / "metrics.jsonl", text);
    return Invocation{resume(run), {s(run / "metrics.jsonl"), "checksum mismatch"}};
  });
  add("MetricsNotJson", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    write_bytes(run / "metrics.jsonl", "{\"epoch\": 1, \"loss\": \n");
    return Invocation{resume(run), {s(run / "metrics.jsonl"), "damaged metrics line 1"}};
  });
  add("MetricsMissing", 1, [](Ctx& c) {
    const auto run = c.mid_run();
    fs::remove(run / "metrics.jsonl");
    return Invocation{resume(run), {s(run / "metrics.jsonl"), "checksum mismatch"}};
  });
  add("FinishedRunWithoutState", 1, [](Ctx& c) {
    const auto run = c.done_run();
    fs::remove(run / "state.pt");
    return Invocation{resume(run), {s(run / "state.pt"), "missing"}};
  });

  // --- results caches and experiments ---
  add("ResultsCacheChecksumMismatch", 1, [](Ctx& c) {
    const auto e = copy_experiment(c);
    std::string text = slurp(e.eval_cache);  // header lines, then the JSON payload
    const size_t at = text.find("\"probe\": ") + 9;
    text.replace(at, text.find(',', at) - at, "0.99");  // a plausible number, but not the one that was computed
    write_bytes(e.eval_cache, text);
    return Invocation{experiment_args(e.out), {s(e.eval_cache), "checksum mismatch"}};
  });
  // Damaged in place: a valid envelope around bytes that are not JSON, nothing at all, JSON without
  // the checksum envelope.
  const auto envelope = [](const std::string& payload) {
    return "MATVAE-ARCHIVE 1\n" + std::to_string(payload.size()) + "\n" +
           matvae::sha256_hex(payload.data(), payload.size()) + "\n" + payload;
  };
  for (const auto& [name, text, mention] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"ResultsCacheNotJson", envelope("{\"2\": {\"probe\": 0"), "not JSON"},
           {"ResultsCacheEmpty", "", "damaged cached result"},
           {"ResultsCacheFieldsMissing", "{\"payload\": {}}", "not a matvae cached result"}}) {
    add(name, 1, [text = text, mention = mention](Ctx& c) {
      const auto e = copy_experiment(c);
      write_bytes(e.eval_cache, text);
      return Invocation{experiment_args(e.out), {s(e.eval_cache), mention}};
    });
  }
  add("ExperimentModelCheckpointTruncated", 1, [](Ctx& c) {
    const auto e = copy_experiment(c);
    fs::remove(e.eval_cache);  // so that the model must be loaded again
    const auto bytes = read_bytes(e.model_run / "checkpoint.pt");
    write_bytes(e.model_run / "checkpoint.pt", std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
    return Invocation{experiment_args(e.out), {s(e.model_run / "checkpoint.pt"), "truncated or damaged checkpoint"}};
  });
  add("ExperimentOutIsAFile", 1, [](Ctx& c) {
    const auto f = c.file("results");
    return Invocation{experiment_args(f), {s(f), "cannot create the results folder"}};
  });
  add("ExperimentUnknownRow", 2, [](Ctx& c) {
    return Invocation{experiment_args(c.dir() / "results", "mmd-at-m,gan"), {"--rows", "'gan'"}};
  });
  add("ExperimentDimNotInNesting", 2, [](Ctx& c) {
    return Invocation{experiment_args(c.dir() / "results", "pca", "3"), {"--dims", "3"}};
  });
  add("ExperimentZeroJobs", 2, [](Ctx& c) {
    auto args = experiment_args(c.dir() / "results", "pca");
    args.insert(args.end() - 2, {"--jobs", "0"});
    return Invocation{args, {"--jobs"}};
  });
  add("ExperimentJobsNotANumber", 2, [](Ctx& c) {
    auto args = experiment_args(c.dir() / "results", "pca");
    args.insert(args.end() - 2, {"--jobs", "two"});
    return Invocation{args, {"--jobs"}};
  });
  add("ExperimentDataSetMissing", 1, [](Ctx& c) {
    auto args = experiment_args(c.dir() / "results", "pca");
    const fs::path root = c.dir() / "no-data";
    args = with(args, "--data-root", root.string());
    c.may_appear = {"results", "results/runs"};
    return Invocation{args, {s(root / "data")}};
  });

  // --- output paths ---
  add("OutIsAFile", 2, [](Ctx& c) {
    const auto f = c.file("out");
    return Invocation{train_args(c, f), {s(f), "not a folder"}};
  });
  add("OutHoldsARun", 2, [](Ctx& c) {
    const auto run = c.mid_run();
    return Invocation{train_args(c, run), {s(run), "already holds a run"}};
  });
  add("OutUnderARegularFile", 1, [](Ctx& c) {
    // Root may write anywhere, so an unwritable folder is made as a path below a regular file.
    const auto f = c.file("blocker");
    return Invocation{train_args(c, f / "run"), {s(f / "run"), "cannot create the run folder", "Not a directory"}};
  });
  add("OutInProc", 1, [](Ctx& c) {
    return Invocation{train_args(c, "/proc/matvae-test-run"),
                      {"/proc/matvae-test-run", "cannot create the run folder"}};
  });
  add("OutNameTooLong", 1, [](Ctx& c) {
    const auto out = c.dir() / std::string(300, 'r');
    return Invocation{train_args(c, out), {s(out), "File name too long"}};
  });
  add("OutOnReadOnlyMount", 1, [](Ctx& c) {
    const auto mnt = c.tmpfs("ro,size=64k");
    if (!mnt) return Invocation{};
    return Invocation{train_args(c, *mnt / "run"), {s(*mnt / "run"), "Read-only file system"}};
  });
  add("DiskFullOnANewRun", 1, [](Ctx& c) {
    // 8 KiB: config.toml and metrics.jsonl fit, state.pt does not.
    const auto mnt = c.tmpfs("size=8k");
    if (!mnt) return Invocation{};
    c.may_appear = {"mnt/run", "mnt/run/config.toml", "mnt/run/metrics.jsonl"};
    return Invocation{train_args(c, *mnt / "run"), {s(*mnt / "run"), "No space left on device"}};
  });
  add("DiskFullOnResume", 1, [](Ctx& c) {
    const auto mnt = c.tmpfs("size=256k");
    if (!mnt) return Invocation{};
    copy_folder(Templates::get().mid(), *mnt / "run");
    fill_disk(*mnt / "filler");
    return Invocation{resume(*mnt / "run"), {s(*mnt / "run" / "state.pt"), "No space left on device"}};
  });
  add("FileSizeLimitOnResume", 1, [](Ctx& c) {
    // Where no tmpfs can be mounted this still simulates a full disk: a file-size limit of 8 KiB
    // (SIGXFSZ ignored, so writes fail with EFBIG) below the size of state.pt.
    const auto run = c.mid_run();
    c.command_prefix = {"/bin/sh", "-c", "ulimit -f 16 && trap '' XFSZ && exec \"$0\" \"$@\""};
    return Invocation{resume(run), {s(run / "state.pt"), "File too large"}};
  });
  return v;
}

class Catalogue : public ::testing::TestWithParam<Case> {};

TEST_P(Catalogue, FailsCleanlyAndChangesNothing) {
  const Case& k = GetParam();
  Ctx ctx;
  const Invocation inv = k.setup(ctx);
  if (!ctx.skip.empty()) GTEST_SKIP() << ctx.skip;
  ASSERT_FALSE(inv.args.empty());
  const auto before = snapshot(ctx.dir());

  std::vector<std::string> argv = ctx.command_prefix;
  argv.push_back(MATVAE_BINARY);
  argv.insert(argv.end(), inv.args.begin(), inv.args.end());
  const auto r = matvae::run_process(argv, ctx.dir());

  EXPECT_EQ(r.exit_code, k.exit_code) << r.output;
  EXPECT_TRUE(no_crash_text(r.output));
  const auto lines = message_lines(r.output);
  ASSERT_EQ(lines.size(), 1u) << "expected a one-line message, got:\n" << r.output;
  EXPECT_EQ(lines[0].rfind("matvae: ", 0), 0u) << lines[0];
  std::cout << "exit " << r.exit_code << ": " << lines[0] << "\n";
  for (const auto& m : inv.mentions) EXPECT_TRUE(contains(lines[0], m));

  // Earlier files are unchanged; nothing new appeared but complete files the case allows.
  const auto after = snapshot(ctx.dir());
  for (const auto& [path, digest] : before) {
    const auto it = after.find(path);
    if (it == after.end())
      ADD_FAILURE() << path << " was removed";
    else
      EXPECT_EQ(it->second, digest) << path << " was changed";
  }
  for (const auto& [path, digest] : after) {
    if (before.count(path)) continue;
    EXPECT_TRUE(std::find(ctx.may_appear.begin(), ctx.may_appear.end(), path) != ctx.may_appear.end())
        << path << " was left behind";
  }
}

INSTANTIATE_TEST_SUITE_P(Reliability, Catalogue, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(CatalogueSize, HasAtLeastThirtyCases) { EXPECT_GE(cases().size(), 30u); }

// --- integrity, through the library ---------------------------------------------------------------

/// A config file's bad choices and nesting lists get exactly the messages of the model's and the
/// losses' own parsers and checks (one table each, no copies).
TEST(ConfigChecks, MatchTheMessagesOfTheModelAndLossParsers) {
  auto toml_message = [](const std::string& text) {
    TrainConfig c;
    return error_message<matvae::UsageError>([&] {
      matvae::apply_toml_text(c, text, "t.toml");
      matvae::resolve(c);
    });
  };
  EXPECT_EQ(toml_message("decoder = 'shared'\n"),
            error_message<matvae::UsageError>([] { matvae::parse_decoder_form("shared"); }));
  EXPECT_EQ(toml_message("likelihood = 'poisson'\n"),
            error_message<matvae::UsageError>([] { matvae::parse_likelihood("poisson"); }));
  EXPECT_EQ(toml_message("kernel = 'laplace'\n"),
            error_message<matvae::UsageError>([] { matvae::parse_mmd_kernel("laplace"); }));
  EXPECT_EQ(toml_message("estimator = 'fair'\n"),
            error_message<matvae::UsageError>([] { matvae::parse_mmd_estimator("fair"); }));
  EXPECT_EQ(toml_message("model = 'gan'\n"), error_message<matvae::UsageError>([] { matvae::parse_model_kind("gan"); }));
  for (const std::string& nesting : {"[2, 8, 4, 64]", "[0, 64]", "[2, 4]"}) {
    const std::vector<int64_t> list = nesting == "[2, 8, 4, 64]" ? std::vector<int64_t>{2, 8, 4, 64}
                                      : nesting == "[0, 64]"     ? std::vector<int64_t>{0, 64}
                                                                 : std::vector<int64_t>{2, 4};
    EXPECT_EQ(toml_message("nesting = " + nesting + "\n"),
              error_message<matvae::UsageError>([&] { matvae::check_nesting(list, 64); }));
  }
}

/// Each choice reads back the value its name was written from, and names the accepted values.
TEST(ConfigChecks, ChoicesRoundTripByName) {
  for (const auto m : {matvae::ModelKind::kVae, matvae::ModelKind::kMmd, matvae::ModelKind::kMrlMmd,
                       matvae::ModelKind::kMrlVae})
    EXPECT_EQ(matvae::parse_model_kind(matvae::to_string(m)), m);
  for (const auto d : {matvae::DecoderForm::kTied, matvae::DecoderForm::kSeparate})
    EXPECT_EQ(matvae::parse_decoder_form(matvae::to_string(d)), d);
  for (const auto l : {matvae::Likelihood::kBernoulli, matvae::Likelihood::kGaussian})
    EXPECT_EQ(matvae::parse_likelihood(matvae::to_string(l)), l);
  for (const auto k : {matvae::MmdKernel::kGaussian, matvae::MmdKernel::kImq})
    EXPECT_EQ(matvae::parse_mmd_kernel(matvae::to_string(k)), k);
  for (const auto e : {matvae::MmdEstimator::kBiased, matvae::MmdEstimator::kUnbiased})
    EXPECT_EQ(matvae::parse_mmd_estimator(matvae::to_string(e)), e);
  EXPECT_TRUE(contains(error_message<matvae::UsageError>([] { matvae::parse_model_kind("gan"); }),
                       "vae, mmd, mrl-mmd or mrl-vae"));
}

/// Non-ASCII text reaches undefined behaviour in toml++ 3.3 outside strings and comments (see
/// check_non_ascii in config.cpp): it is refused there, and kept in string values and comments.
TEST(ConfigChecks, NonAsciiOnlyInStringValuesAndComments) {
  for (const std::string ok : {"data = \"/data/jos\xc3\xa9\"  # \xce\xbb = 100\n", "data = '\xc3\xa9'\n",
                               "data = \"\"\"\xc3\xa9\n\xc3\xa9\"\"\"\n", "data = '''\xc3\xa9'''\n",
                               "\xef\xbb\xbflr = 0.5\n", "hidden = [ # \xc3\xa9\n 8, # \xc3\xa9\n 4 ]\n"}) {
    SCOPED_TRACE(ok);
    TrainConfig c;
    EXPECT_NO_THROW(matvae::apply_toml_text(c, ok, "ok.toml"));
  }
  TrainConfig c;
  matvae::apply_toml_text(c, "data = \"/data/jos\xc3\xa9\"\n", "ok.toml");
  EXPECT_EQ(c.data, "/data/jos\xc3\xa9");
  for (const std::string bad :
       {"amda \xc3\x93", "\xcc\xaa", "lr = 1\xc3\xa9-3\n", "\"\xc3\xa9\" = 1\n", "[\xc3\xa9]\n", "lr = 1 \xc3\xa9\n",
        "s = \"\"\"\\\n\xc2\xa7\"\"\"\n", "e=0B'7''66limit32\x1d:\xc9\x9bpei 66", "x = { \"\xc3\xa9\" = 1 }\n",
        "x = [ 1, 2\xc3\xa9 ]\n", "x = \"a\"\xc3\xa9\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(contains(error_message<matvae::UsageError>([&] { matvae::apply_toml_text(c, bad, "bad.toml"); }),
                         "bad.toml:"));
  }
}

class Integrity : public TempDirTest {};

TEST_F(Integrity, EveryDamagedByteOfAStateIsFound) {
  const fs::path state = dir() / "state.pt";
  fs::copy_file(Templates::get().mid() / "state.pt", state);
  const auto good = read_bytes(state);
  for (size_t i = 0; i < 64; ++i) {
    const size_t at = i * (good.size() - 1) / 63;
    SCOPED_TRACE("byte " + std::to_string(at));
    auto bad = good;
    bad[at] ^= 0x01;
    write_bytes(state, bad);
    torch::serialize::InputArchive archive;
    EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::load_archive(archive, state); }), state.string()));
  }
}

TEST_F(Integrity, DamagedOrForeignCheckpointIsNotLoaded) {
  copy_folder(Templates::get().done(), dir() / "run");
  const fs::path ckpt = dir() / "run" / "checkpoint.pt";
  EXPECT_NO_THROW(matvae::RunFolder(dir() / "run").load());
  const auto good = read_bytes(ckpt);
  flip_byte(ckpt, good.size() / 2);
  EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::RunFolder(dir() / "run").load(); }),
                       ckpt.string() + ": damaged checkpoint: checksum mismatch"));
  auto cut = good;
  cut.resize(cut.size() / 3);
  write_bytes(ckpt, cut);
  EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::RunFolder(dir() / "run").load(); }), "truncated"));
  // The final weights of a latent-3 run: a different config.
  fs::copy_file(Templates::get().other() / "checkpoint.pt", ckpt, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::RunFolder(dir() / "run").load(); }), "different config"));
  // The same, relabelled with this run's config hash: the shapes still give it away.
  torch::serialize::InputArchive in;
  matvae::load_archive(in, Templates::get().other() / "checkpoint.pt");
  torch::serialize::InputArchive model_in;
  in.read("model", model_in);
  matvae::VaeOptions o(30, 3);
  o.hidden({16}).nesting({2, 3});
  matvae::Vae other(o);
  other->load(model_in);
  torch::serialize::OutputArchive out, model_out;
  other->save(model_out);
  out.write("model", model_out);
  out.write("config_hash", c10::IValue(matvae::config_hash(matvae::RunFolder(dir() / "run").read_config())));
  matvae::save_archive(out, ckpt);
  const auto msg = error_message<matvae::Error>([&] { matvae::RunFolder(dir() / "run").load(); });
  EXPECT_TRUE(contains(msg, "does not fit this model"));
  EXPECT_TRUE(contains(msg, "[4, 16] in the model"));
}

/// metrics.jsonl lines for the runs' comparisons: timing fields dropped.
std::vector<nlohmann::json> metrics(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("images_per_s");
    out.push_back(j);
  }
  return out;
}

TEST_F(Integrity, RunKilledBeforeItsFirstCheckpointStartsAgainOnResume) {
  // What a kill between writing config.toml and the first state.pt leaves: config.toml, maybe a
  // temporary, and (killed between the epoch's metrics line and its state) one metrics line.
  copy_folder(Templates::get().done(), dir() / "run");
  for (const char* f : {"state.pt", "checkpoint.pt", "recon.png", "samples.png"}) fs::remove(dir() / "run" / f);
  std::string first_line;
  std::getline(std::ifstream(dir() / "run" / "metrics.jsonl"), first_line);
  write_bytes(dir() / "run" / "metrics.jsonl", first_line + "\n");
  write_bytes(dir() / "run" / "state.pt.tmp123456", "partial");
  std::vector<std::string> log;
  matvae::TrainHooks hooks;
  hooks.on_log = [&](const std::string& s) { log.push_back(s); };
  const auto r = matvae::resume(dir() / "run", hooks);
  EXPECT_FALSE(r.interrupted);
  ASSERT_FALSE(log.empty());
  EXPECT_TRUE(contains(log[0], "starting the run from the beginning"));
  EXPECT_EQ(metrics(dir() / "run"), metrics(Templates::get().done()));
  EXPECT_FALSE(fs::exists(dir() / "run" / "state.pt.tmp123456"));
}

}  // namespace
