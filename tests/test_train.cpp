// End-to-end training on a small real subset (2,000 MNIST training images, 500 test): the loss
// falls, reconstructions beat the mean image, runs are deterministic, an interrupted and resumed
// run ends exactly like an uninterrupted one, NaNs stop the run, bad settings write nothing.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <nlohmann/json.hpp>

#include "matvae/data/dataset.h"
#include "matvae/data/idx.h"
#include "matvae/train/archive.h"
#include "matvae/train/run_folder.h"
#include "matvae/train/trainer.h"
#include "matvae/util/threads.h"
#include "matvae/util/error.h"
#include "stop_hooks.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using matvae::TrainConfig;
using matvae_test::contains;
using matvae_test::error_message;

/// Writes the first n images of an MNIST split as IDX files, so the runs stay small.
void write_subset(const matvae::Dataset& d, int64_t n, const fs::path& dir, const std::string& prefix) {
  const auto px = (d.images.narrow(0, 0, n) * 255).round().to(torch::kUInt8).contiguous();
  const auto lb = d.labels.narrow(0, 0, n).to(torch::kUInt8).contiguous();
  matvae::IdxArray images{{n, d.height, d.width}, {px.data_ptr<uint8_t>(), px.data_ptr<uint8_t>() + px.numel()}};
  matvae::IdxArray labels{{n}, {lb.data_ptr<uint8_t>(), lb.data_ptr<uint8_t>() + n}};
  matvae_test::write_bytes(dir / (prefix + "-images-idx3-ubyte"), matvae::encode_idx(images, matvae::kIdxMagicImages));
  matvae_test::write_bytes(dir / (prefix + "-labels-idx1-ubyte"), matvae::encode_idx(labels, matvae::kIdxMagicLabels));
}

class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path mnist = fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist";
    if (!fs::exists(mnist)) return;
    data_ = std::make_unique<matvae_test::TempDir>();
    const auto full = matvae::load_dataset(mnist);
    write_subset(full.train, 2000, data_->path(), "train");
    write_subset(full.test, 500, data_->path(), "t10k");
  }
  static void TearDownTestSuite() { data_.reset(); }
  void SetUp() override {
    if (!data_) GTEST_SKIP() << "data/mnist is missing: run `build/matvae data fetch`";
  }

  static TrainConfig small(const std::string& model = "mrl-mmd") {
    TrainConfig c;
    c.model = matvae::parse_model_kind(model);
    c.data = data_->path().string();
    c.latent = 8;
    c.hidden = {64};
    c.batch_size = 100;
    c.epochs = 3;
    c.threads = 1;
    c.seed = 11;
    return c;
  }

  /// metrics.jsonl without the timing fields.
  static std::vector<nlohmann::json> metrics(const fs::path& run) {
    std::vector<nlohmann::json> out;
    std::ifstream in(run / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      j.erase("seconds");
      j.erase("images_per_s");
      j.erase("collective_seconds");
      out.push_back(j);
    }
    return out;
  }

  /// Trains `c` into `run`, stopped after `stop_at` steps, then resumes it to the end.
  static void train_stopped_then_resumed(const TrainConfig& c, const fs::path& run, int64_t stop_at) {
    std::atomic<bool> stop{false};
    const matvae::TrainHooks hooks = matvae_test::stop_at_step(stop, stop_at);
    EXPECT_TRUE(matvae::train(c, run, hooks).interrupted);
    stop = false;
    stop_at = -1;
    EXPECT_FALSE(matvae::resume(run, hooks).interrupted);
  }

  matvae_test::TempDir out_;
  static inline std::unique_ptr<matvae_test::TempDir> data_;
};

TEST_F(TrainTest, LossFallsAndReconstructionBeatsTheMeanImage) {
  const fs::path run = out_ / "run";
  // On 2,000 images the MMD-VAE needs ~200 steps to leave the mean-image plateau: smaller batches,
  // a larger step and a lighter MMD weight get it there in a second.
  TrainConfig c = small();
  c.batch_size = 50;
  c.epochs = 5;
  c.lr = 3e-3;
  c.lambda = 10;
  const auto result = matvae::train(c, run);
  EXPECT_FALSE(result.interrupted);
  const auto m = metrics(run);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_LT(m[4]["train"]["loss"].get<double>(), m[0]["train"]["loss"].get<double>());
  EXPECT_LT(m[4]["test"]["loss"].get<double>(), m[0]["test"]["loss"].get<double>());

  // The mean training image as a Bernoulli prediction for every test image.
  const auto data = matvae::load_dataset(data_->path());
  const auto p = data.train.images.mean(0).clamp(1e-6, 1 - 1e-6);
  const auto& x = data.test.images;
  const double mean_image_nats =
      -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean().item<double>();
  for (const char* mdim : {"2", "4", "8"}) {
    SCOPED_TRACE(mdim);
    EXPECT_LT(m[4]["test"]["recon"][mdim].get<double>(), mean_image_nats);
  }
  // Larger prefixes reconstruct better.
  EXPECT_LT(m[4]["test"]["recon"]["8"].get<double>(), m[4]["test"]["recon"]["2"].get<double>());
  for (const char* f : {"config.toml", "metrics.jsonl", "state.pt", "checkpoint.pt", "recon.png", "samples.png"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  // The final weights load back into the same model.
  const auto loaded = matvae::RunFolder(run).load();
  EXPECT_EQ(loaded.config.nesting, (std::vector<int64_t>{2, 4, 8}));
}

TEST_F(TrainTest, TwoRunsGiveIdenticalMetrics) {
  for (const char* model : {"mrl-mmd", "vae"}) {
    SCOPED_TRACE(model);
    TrainConfig c = small(model);
    c.epochs = 2;
    matvae::train(c, out_ / (std::string(model) + "a"));
    matvae::train(c, out_ / (std::string(model) + "b"));
    const auto a = metrics(out_ / (std::string(model) + "a"));
    EXPECT_EQ(a, metrics(out_ / (std::string(model) + "b")));
    c.seed = 12;
    matvae::train(c, out_ / (std::string(model) + "c"));
    EXPECT_NE(a, metrics(out_ / (std::string(model) + "c")));  // the seed matters
  }
}

TEST_F(TrainTest, InterruptedAndResumedRunEqualsUninterrupted) {
  // On one thread, and on a team of two one-thread ranks (threads 2, parallel batch), where rank 0
  // sees the stop request and the step it is in tells the other.
  for (const int64_t threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    const std::string tag = std::to_string(threads);
    TrainConfig c = small();
    c.decoder = matvae::DecoderForm::kSeparate;
    c.checkpoint_every = 7;
    c.threads = threads;
    matvae::train(c, out_ / ("whole" + tag));

    // Stop mid-epoch (step 27 of 20 per epoch = epoch 2), then again in epoch 3, resuming each time.
    std::atomic<bool> stop{false};
    int64_t stop_at = 27;
    const matvae::TrainHooks hooks = matvae_test::stop_at_step(stop, stop_at);
    auto r = matvae::train(c, out_ / ("parts" + tag), hooks);
    EXPECT_TRUE(r.interrupted);
    EXPECT_EQ(metrics(out_ / ("parts" + tag)).size(), 1u);
    stop = false;
    stop_at = 15;
    r = matvae::resume(out_ / ("parts" + tag), matvae_test::stop_at_step(stop, stop_at));  // counting from 0 again
    EXPECT_TRUE(r.interrupted);
    stop = false;
    stop_at = -1;
    r = matvae::resume(out_ / ("parts" + tag), hooks);
    EXPECT_FALSE(r.interrupted);
    const auto whole = metrics(out_ / ("whole" + tag));
    EXPECT_EQ(whole, metrics(out_ / ("parts" + tag)));
    EXPECT_EQ(whole.front().value("ranks", 1), threads);  // a team of two, or one process
    EXPECT_EQ(matvae_test::read_bytes(out_ / ("whole" + tag) / "recon.png"),
              matvae_test::read_bytes(out_ / ("parts" + tag) / "recon.png"));
  }
}

TEST_F(TrainTest, CosineScheduleStartsAtTheRateAnnealsItAndResumesExactly) {
  // One step: the schedule's first rate is lr, so the run is the constant-rate one to the bit.
  TrainConfig c = small();
  c.limit = 100;
  c.epochs = 1;
  matvae::train(c, out_ / "constant1");
  c.lr_schedule = matvae::LrSchedule::kCosine;
  matvae::train(c, out_ / "cosine1");
  EXPECT_EQ(metrics(out_ / "constant1"), metrics(out_ / "cosine1"));
  // Three epochs of 20 steps: the later steps are smaller, so the runs part.
  c = small();
  c.checkpoint_every = 7;
  matvae::train(c, out_ / "constant");
  c.lr_schedule = matvae::LrSchedule::kCosine;
  matvae::train(c, out_ / "cosine");
  const auto whole = metrics(out_ / "cosine");
  EXPECT_NE(metrics(out_ / "constant").back()["train"], whole.back()["train"]);
  // Stopped mid-epoch and resumed, it takes the same rates at the same steps.
  train_stopped_then_resumed(c, out_ / "parts", 33);
  EXPECT_EQ(whole, metrics(out_ / "parts"));
}

TEST_F(TrainTest, PrefixSamplingResumesExactlyAndAveragesEachPrefixOverItsSteps) {
  TrainConfig c = small();
  c.prefix_sample = 1;  // one of the 3 prefixes per step
  c.checkpoint_every = 5;
  matvae::train(c, out_ / "whole");
  train_stopped_then_resumed(c, out_ / "parts", 33);
  const auto m = metrics(out_ / "whole");
  EXPECT_EQ(m, metrics(out_ / "parts"));

  // Every prefix has a training average over the steps that drew it, and the run differs from one
  // that trains all prefixes each step.
  for (const char* mdim : {"2", "4", "8"}) {
    SCOPED_TRACE(mdim);
    ASSERT_TRUE(m[2]["train"]["recon"][mdim].is_number());
    EXPECT_GT(m[2]["train"]["recon"][mdim].get<double>(), 0.0);
  }
  TrainConfig all = c;
  all.prefix_sample = 0;
  matvae::train(all, out_ / "all");
  EXPECT_NE(m, metrics(out_ / "all"));
  EXPECT_NE(matvae::config_hash(c), matvae::config_hash(all));
}

TEST_F(TrainTest, NonFiniteLossStopsTheRunAndKeepsTheLastCheckpoint) {
  TrainConfig c = small("vae");
  c.lr = 1e30;  // the first update blows the weights up
  c.checkpoint_every = 1;
  const auto msg = error_message<matvae::Error>([&] { matvae::train(c, out_ / "nan"); });
  EXPECT_TRUE(contains(msg, "step "));
  EXPECT_TRUE(msg.find("NaN") != std::string::npos || msg.find("infinite") != std::string::npos) << msg;
  EXPECT_TRUE(contains(msg, "state.pt"));
  // The checkpoint of the last good step is intact.
  torch::serialize::InputArchive archive;
  EXPECT_NO_THROW(matvae::load_archive(archive, out_ / "nan" / "state.pt"));
}

TEST_F(TrainTest, BadSettingsThrowUsageErrorAndWriteNothing) {
  const std::vector<std::pair<std::function<void(TrainConfig&)>, std::string>> cases = {
      {[](TrainConfig& c) { c.nesting = {2, 8, 4}; }, "strictly increase"},
      {[](TrainConfig& c) { c.nesting = {2, 4}; }, "must equal the latent size"},
      {[](TrainConfig& c) { c.lambda = -1; }, "lambda"},
      {[](TrainConfig& c) { c.beta = -0.5; }, "beta"},
      {[](TrainConfig& c) { matvae::apply_toml_text(c, "model = 'gan'\n", "t.toml"); }, "model"},
      {[](TrainConfig& c) { matvae::apply_toml_text(c, "kernel = 'laplace'\n", "t.toml"); }, "laplace"},
      {[](TrainConfig& c) { c.batch_size = 0; }, "batch_size"},
      {[](TrainConfig& c) { c.weights = {1, 2}; }, "weights"},
      {[](TrainConfig& c) { matvae::apply_toml_text(c, "decoder = 'shared'\n", "t.toml"); }, "shared"},
      {[](TrainConfig& c) { c.lr = 0; }, "lr"},
      {[](TrainConfig& c) { c.epochs = 0; }, "epochs"},
      {[](TrainConfig& c) { c.batch_size = 5000; }, "larger than the 2000 training images"},
  };
  int i = 0;
  for (const auto& [mutate, expected] : cases) {
    SCOPED_TRACE(expected);
    const fs::path run = out_ / ("bad" + std::to_string(i++));
    // A bad choice is refused where its text is parsed (a config file, a flag), before train().
    EXPECT_TRUE(contains(error_message<matvae::UsageError>([&] {
                           TrainConfig c = small();
                           mutate(c);
                           matvae::train(c, run);
                         }),
                         expected));
    EXPECT_FALSE(fs::exists(run));
  }
}

TEST_F(TrainTest, RefusesToOverwriteAFinishedRun) {
  TrainConfig c = small();
  c.epochs = 1;
  matvae::train(c, out_ / "run");
  const auto before = matvae_test::read_bytes(out_ / "run" / "metrics.jsonl");
  EXPECT_TRUE(contains(error_message<matvae::UsageError>([&] { matvae::train(c, out_ / "run"); }), "already holds a run"));
  EXPECT_EQ(before, matvae_test::read_bytes(out_ / "run" / "metrics.jsonl"));
}

// A step's large activations stay in the heap between steps (set_threads' keep_freed_memory): with
// glibc's defaults an MRL-MMD-VAE at batch 256 page-faulted about 20,000 pages per step (22% of its
// time, 2.5x slower per image than at batch 128). glibc's thresholds move with what a process has
// freed before, so each training runs in a fresh matvae process, 2 and 8 steps long.
TEST_F(TrainTest, StepsReuseTheirMemoryInsteadOfFaultingItInAgain) {
  const auto minor_faults = [&](int64_t images) {
    const fs::path out = out_ / ("run" + std::to_string(images));
    const pid_t pid = matvae_test::spawn_matvae({"train", "--data", data_->path().string(), "--model", "mrl-mmd",
                                                 "--batch-size", "256", "--epochs", "1", "--threads", "1", "--limit",
                                                 std::to_string(images), "--quiet", "--out", out.string()},
                                                out_ / "log.txt");
    EXPECT_GT(pid, 0);
    int status = 0;
    rusage u{};
    EXPECT_EQ(wait4(pid, &status, 0, &u), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << [&] {
      const auto b = matvae_test::read_bytes(out_ / "log.txt");
      return std::string(b.begin(), b.end());
    }();
    return static_cast<int64_t>(u.ru_minflt);
  };
  const int64_t per_step = (minor_faults(2000) - minor_faults(512)) / 6;
  // Measured: about 600 per step with the fix (late growth of the heap), 20,000 without.
  EXPECT_LT(per_step, 3000) << "page faults per step";
}

}  // namespace

// Subnormal floats cost several times a normal one in every product; long trainings make them
// (sigmoids of very negative logits), so set_threads has every thread that computes flush them.
TEST(SetThreads, EveryThreadOfTheTeamFlushesSubnormalsToZero) {
  const auto subnormal_survives = [] {
    volatile float tiny = 1e-30f;  // volatile: computed at run time, under this thread's flush mode
    volatile float product = tiny * 1e-10f;
    return product != 0.0f;
  };
  const auto team_keeping = [&] {  // how many threads of this thread's 2-thread team keep subnormals
    std::atomic<int> kept{0}, ran{0};
    std::mutex mutex;
    std::set<std::thread::id> threads;
    at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      for (int64_t i = begin; i < end; ++i) {
        ++ran;
        if (subnormal_survives()) ++kept;
      }
    });
    EXPECT_EQ(ran.load(), 2);
    // Two OS threads, or the team is not what it checks: built without OpenMP, at::parallel_for
    // runs everything on the calling thread (and then every fused kernel runs on one core).
    EXPECT_EQ(threads.size(), 2u) << "at::parallel_for ran on one thread: matvae built without -fopenmp?";
    return kept.load();
  };
  std::thread([&] {
    // The team exists and keeps subnormals before set_threads (as after an earlier parallel op).
    torch::set_num_threads(2);
    at::globalContext().setFlushDenormal(false);
    at::parallel_for(0, 2, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(false); });
    ASSERT_TRUE(subnormal_survives());
    ASSERT_EQ(team_keeping(), 2);
    matvae::set_threads(2);
    EXPECT_FALSE(subnormal_survives());
    EXPECT_EQ(team_keeping(), 0);
  }).join();
}
