// The fetch layer without the network: SHA-256 known answers, atomic writes (content, no leftovers,
// failures that name the path), gunzip's limits, run_process, the recorded-sum tables, and the
// Fashion-MNIST JSON-to-IDX conversion on synthetic per-class JSON.
#include <chrono>
#include <algorithm>
#include <set>

#include "matvae/data/dataset.h"
#include "matvae/data/fetch.h"
#include "matvae/data/info.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"
#include "matvae/util/sha256.h"
#include "matvae/util/subprocess.h"
#include "test_util.h"

namespace {

using namespace matvae_test;
using matvae::Error;

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> pattern_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 31) ^ (i >> 9));
  return v;
}

// ---------------------------------------------------------------------------------------------
// SHA-256

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(matvae::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(matvae::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string million(1000000, 'a');
  EXPECT_EQ(matvae::sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

class Sha256File : public TempDirTest {};

TEST_F(Sha256File, MatchesBufferHashAcrossReadChunks) {
  write_bytes(dir() / "abc", std::string("abc"));
  EXPECT_EQ(matvae::sha256_file(dir() / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Larger than the 1 MiB read buffer, and not a multiple of it.
  const auto big = pattern_bytes((size_t{1} << 20) * 2 + 7);
  write_bytes(dir() / "big", big);
  EXPECT_EQ(matvae::sha256_file(dir() / "big"), matvae::sha256_hex(big.data(), big.size()));
  write_bytes(dir() / "million", std::string(1000000, 'a'));
  EXPECT_EQ(matvae::sha256_file(dir() / "million"),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(Sha256File, MissingFileNamesIt) {
  const auto path = dir() / "absent";
  EXPECT_TRUE(contains(error_message<Error>([&] { matvae::sha256_file(path); }), path.string()));
}

// ---------------------------------------------------------------------------------------------
// Whole-file reads and atomic writes

class FileIo : public TempDirTest {};

TEST_F(FileIo, ReadFileRoundTripAndErrors) {
  const auto bytes = pattern_bytes(5000);
  write_bytes(dir() / "f", bytes);
  EXPECT_EQ(matvae::read_file(dir() / "f"), bytes);
  write_bytes(dir() / "empty", std::vector<uint8_t>{});
  EXPECT_TRUE(matvae::read_file(dir() / "empty").empty());

  std::string msg = error_message<Error>([&] { matvae::read_file(dir() / "missing"); });
  EXPECT_TRUE(contains(msg, (dir() / "missing").string()));
  EXPECT_TRUE(contains(msg, "no such file"));
  msg = error_message<Error>([&] { matvae::read_file(dir()); });
  EXPECT_TRUE(contains(msg, dir().string()));
  EXPECT_TRUE(contains(msg, "is a directory"));
}

TEST_F(FileIo, StaleTemporariesOfOurFilesAreRemovedAndNothingElse) {
  for (const char* name : {"a.json", "a.json.tmp123", "b.png.tmp7", "a.json.tmp", "a.json.tmpx1", "c.txt.tmp5",
                           "notes.tmp42"})
    write_bytes(dir() / name, std::vector<uint8_t>{1});
  fs::create_directories(dir() / "d.json.tmp9");  // a folder, never removed
  matvae::remove_stale_temporaries(dir(), [](const std::string& name) {
    return name == "a.json" || name == "b.png";
  });
  EXPECT_EQ(listing(dir()),
            (std::vector<std::string>{"a.json", "a.json.tmp", "a.json.tmpx1", "c.txt.tmp5", "d.json.tmp9", "notes.tmp42"}));
}

TEST_F(FileIo, WriteFileAtomicWritesExactlyTheContent) {
  const auto path = dir() / "out.bin";
  const auto bytes = pattern_bytes(100000);
  matvae::write_file_atomic(path, bytes.data(), bytes.size());
  EXPECT_EQ(read_bytes(path), bytes);
  EXPECT_EQ(listing(dir()), std::vector<std::string>{"out.bin"});  // no leftover temporaries

  // Replacing an existing (longer) file leaves only the new content.
  matvae::write_file_atomic(path, std::string("short"));
  EXPECT_EQ(read_bytes(path), (std::vector<uint8_t>{'s', 'h', 'o', 'r', 't'}));
  matvae::write_file_atomic(path, std::string());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_EQ(listing(dir()), std::vector<std::string>{"out.bin"});
}

TEST_F(FileIo, WriteIntoMissingFolderThrowsAndLeavesNothing) {
  const auto path = dir() / "no-such-folder" / "out.txt";
  const std::string msg = error_message<Error>([&] { matvae::write_file_atomic(path, std::string("data")); });
  EXPECT_TRUE(contains(msg, path.string()));
  EXPECT_TRUE(contains(msg, "does not exist"));
  EXPECT_FALSE(fs::exists(dir() / "no-such-folder"));
  EXPECT_TRUE(listing(dir()).empty());
}

TEST_F(FileIo, FailedRenameRemovesTheTemporary) {
  // The target is a non-empty folder: the temporary is written, the rename fails, and the
  // temporary must be gone afterwards with the folder untouched.
  const auto target = dir() / "occupied";
  fs::create_directory(target);
  write_bytes(target / "keep", std::string("x"));
  const std::string msg = error_message<Error>([&] { matvae::write_file_atomic(target, std::string("data")); });
  EXPECT_TRUE(contains(msg, target.string()));
  EXPECT_TRUE(contains(msg, "rename failed"));
  EXPECT_EQ(listing(dir()), std::vector<std::string>{"occupied"});
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(listing(target), std::vector<std::string>{"keep"});
}

// ---------------------------------------------------------------------------------------------
// gunzip

TEST(Gunzip, IsGzip) {
  EXPECT_TRUE(matvae::is_gzip(gzip_bytes({1, 2, 3})));
  EXPECT_FALSE(matvae::is_gzip({0x1f}));
  EXPECT_FALSE(matvae::is_gzip({}));
  EXPECT_FALSE(matvae::is_gzip(zlib_bytes({1, 2, 3})));
}

TEST(Gunzip, RoundTripAtAndAcrossTheCap) {
  // 2 MiB + 3: output crosses the inflater's 1 MiB chunks.
  const auto data = pattern_bytes((size_t{1} << 21) + 3);
  const auto gz = gzip_bytes(data);
  EXPECT_EQ(matvae::gunzip(gz, data.size(), "x.gz"), data);          // the cap is inclusive
  EXPECT_EQ(matvae::gunzip(gz, data.size() + 1000, "x.gz"), data);   // a loose cap
  EXPECT_EQ(matvae::gunzip(gz, UINT64_MAX, "x.gz"), data);           // no practical cap
  const std::string msg = error_message<Error>([&] { matvae::gunzip(gz, data.size() - 1, "x.gz"); });
  EXPECT_TRUE(contains(msg, "x.gz"));
  EXPECT_TRUE(contains(msg, "more than the " + std::to_string(data.size() - 1) + " bytes"));
}

TEST(Gunzip, ExactMiBOutputAndCaps) {
  const auto data = pattern_bytes(size_t{1} << 20);  // exactly one chunk
  const auto gz = gzip_bytes(data);
  EXPECT_EQ(matvae::gunzip(gz, data.size(), "y.gz"), data);
  EXPECT_TRUE(contains(error_message<Error>([&] { matvae::gunzip(gz, data.size() - 1, "y.gz"); }), "more than"));
  EXPECT_TRUE(contains(error_message<Error>([&] { matvae::gunzip(gz, 0, "y.gz"); }), "more than the 0 bytes"));
  EXPECT_EQ(matvae::gunzip(gzip_bytes({}), 0, "empty.gz"), std::vector<uint8_t>{});
}

TEST(Gunzip, AcceptsZlibStreams) {
  const auto data = pattern_bytes(7777);
  EXPECT_EQ(matvae::gunzip(zlib_bytes(data), data.size(), "z"), data);
}

TEST(Gunzip, PrefixReturnsTheFirstBytesOnly) {
  const auto data = pattern_bytes(300000);
  const auto gz = gzip_bytes(data);
  EXPECT_EQ(matvae::gunzip_prefix(gz, 16, "p.gz"), std::vector<uint8_t>(data.begin(), data.begin() + 16));
  EXPECT_EQ(matvae::gunzip_prefix(gz, data.size() + 50, "p.gz"), data);  // shorter stream: all of it
  // A prefix can be read from a stream whose tail is missing.
  const std::vector<uint8_t> half(gz.begin(), gz.begin() + gz.size() / 2);
  EXPECT_EQ(matvae::gunzip_prefix(half, 1024, "p.gz"), std::vector<uint8_t>(data.begin(), data.begin() + 1024));
}

TEST(Gunzip, CorruptTruncatedEmptyAndGarbageInputThrow) {
  const auto data = pattern_bytes(50000);
  const auto gz = gzip_bytes(data);
  auto bad = gz;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 8; ++i) bad[i] ^= 0xff;
  std::string msg = error_message<Error>([&] { matvae::gunzip(bad, data.size(), "bad.gz"); });
  EXPECT_TRUE(contains(msg, "bad.gz"));
  EXPECT_TRUE(contains(msg, "corrupt gzip stream"));

  const std::vector<uint8_t> cut(gz.begin(), gz.end() - 10);
  msg = error_message<Error>([&] { matvae::gunzip(cut, data.size(), "cut.gz"); });
  EXPECT_TRUE(contains(msg, "cut.gz"));
  EXPECT_TRUE(contains(msg, "truncated"));

  msg = error_message<Error>([&] { matvae::gunzip({}, 100, "nothing.gz"); });
  EXPECT_TRUE(contains(msg, "nothing.gz"));

  msg = error_message<Error>([&] { matvae::gunzip(pattern_bytes(100), 1000, "plain.bin"); });
  EXPECT_TRUE(contains(msg, "plain.bin"));
  EXPECT_TRUE(contains(msg, "corrupt gzip stream"));
}

// ---------------------------------------------------------------------------------------------
// run_process

class Subprocess : public TempDirTest {};

TEST_F(Subprocess, ExitCodeAndBothStreams) {
  const auto r = matvae::run_process({"sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.output, "to-out"));
  EXPECT_TRUE(contains(r.output, "to-err"));
  EXPECT_EQ(matvae::run_process({"true"}).exit_code, 0);
}

TEST_F(Subprocess, RunsInTheGivenFolder) {
  const auto r = matvae::run_process({"pwd"}, dir());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(fs::canonical(r.output.substr(0, r.output.find('\n'))), fs::canonical(dir()));
}

TEST_F(Subprocess, MissingProgramAndSignals) {
  const auto r = matvae::run_process({"matvae-no-such-program-xyz"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_TRUE(contains(r.output, "matvae-no-such-program-xyz: cannot run"));
  EXPECT_EQ(matvae::run_process({"sh", "-c", "kill -9 $$"}).exit_code, -1);
  EXPECT_EQ(matvae::run_process({}).exit_code, -1);
}

TEST_F(Subprocess, KeepsTheTailOfLongOutput) {
  const auto r = matvae::run_process({"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done; echo END"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_LE(r.output.size(), 4096u);
  EXPECT_GT(r.output.size(), 3000u);
  EXPECT_EQ(r.output.substr(r.output.size() - 4), "END\n");
  EXPECT_TRUE(contains(r.output, "line2999"));
}

// ---------------------------------------------------------------------------------------------
// Recorded sums

TEST(RecordedSums, TablesAndNames) {
  EXPECT_EQ(matvae::idx_file_names(),
            (std::vector<std::string>{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                      "t10k-labels-idx1-ubyte"}));
  for (const std::string ds : {"mnist", "fashion-mnist"}) {
    const auto& sums = matvae::recorded_sha256(ds);
    ASSERT_EQ(sums.size(), 4u) << ds;
    for (const auto& name : matvae::idx_file_names()) {
      ASSERT_TRUE(sums.count(name)) << ds << " has no sum for " << name;
      EXPECT_EQ(sums.at(name).size(), 64u);
      EXPECT_EQ(sums.at(name).find_first_not_of("0123456789abcdef"), std::string::npos);
    }
  }
  const std::string msg = error_message<matvae::UsageError>([] { matvae::recorded_sha256("cifar"); });
  EXPECT_TRUE(contains(msg, "cifar"));
}

class Verified : public TempDirTest {};

TEST_F(Verified, MissingOrWrongFilesAreNotVerified) {
  EXPECT_FALSE(matvae::dataset_verified(dir() / "absent", "mnist"));
  EXPECT_FALSE(matvae::dataset_verified(dir(), "mnist"));
  for (const auto& name : matvae::idx_file_names()) write_bytes(dir() / name, std::string("not the data"));
  EXPECT_FALSE(matvae::dataset_verified(dir(), "mnist"));
}

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST from Debian's package: the contents are verified, not the .gz bytes, and a damaged,
// substituted or missing file is refused with its name.

class FashionFetch : public TempDirTest {
 protected:
  /// A source folder holding the four files gzipped, with `contents` as each file's uncompressed bytes.
  fs::path source(const std::string& contents) {
    const fs::path src = dir() / "debian";
    fs::create_directories(src);
    for (const auto& name : matvae::idx_file_names())
      write_bytes(src / (name + ".gz"), gzip_bytes(std::vector<uint8_t>(contents.begin(), contents.end())));
    return src;
  }
  std::string fetch_error(const fs::path& src) {
    matvae::FetchOptions o;
    o.data_root = dir() / "data";
    o.fashion_source = src;
    return error_message<matvae::Error>([&] { matvae::fetch_dataset("fashion-mnist", o); });
  }
};

TEST_F(FashionFetch, SubstitutedFilesAreRefusedByName) {
  const fs::path src = source("not fashion-mnist");
  const std::string msg = fetch_error(src);
  EXPECT_TRUE(contains(msg, (src / "t10k-images-idx3-ubyte.gz").string()) ||
              contains(msg, (src / "train-images-idx3-ubyte.gz").string()))
      << msg;
  EXPECT_TRUE(contains(msg, "does not match the recorded"));
  EXPECT_TRUE(contains(msg, "substituted"));
  // Nothing that looks like data was written.
  EXPECT_FALSE(matvae::dataset_verified(dir() / "data" / "fashion-mnist", "fashion-mnist"));
  for (const auto& name : matvae::idx_file_names()) EXPECT_FALSE(fs::exists(dir() / "data" / "fashion-mnist" / name));
}

TEST_F(FashionFetch, DamagedGzipIsRefusedByName) {
  const fs::path src = source("x");
  const fs::path bad = src / "t10k-images-idx3-ubyte.gz";
  auto bytes = read_bytes(bad);
  bytes.resize(bytes.size() / 2);  // truncated
  write_bytes(bad, bytes);
  const fs::path first = src / "t10k-images-idx3-ubyte.gz";  // the recorded table's order: t10k files first
  const std::string msg = fetch_error(src);
  EXPECT_TRUE(contains(msg, first.string())) << msg;
  EXPECT_TRUE(contains(msg, "corrupt gzip stream"));
}

TEST_F(FashionFetch, MissingPackageSaysHowToInstallIt) {
  const std::string msg = fetch_error(dir() / "nowhere");
  EXPECT_TRUE(contains(msg, (dir() / "nowhere").string()));
  EXPECT_TRUE(contains(msg, "dataset-fashion-mnist"));
}

}  // namespace
