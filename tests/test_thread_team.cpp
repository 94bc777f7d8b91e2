// Tests of the thread team (dist/thread_team.h): its collectives against their definitions, and its
// failures: a rank that throws, rank 0's failing check, a rank that returns early: each ends every
// rank with the one failure named, and none hangs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <string>
#include <vector>

#include "matvae/dist/thread_team.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {

using matvae::Collectives;
using matvae::ThreadTeam;

TEST(ThreadTeam, AllReduceSumsEveryTensorInPlaceOnEveryRank) {
  ThreadTeam team(3);
  std::vector<std::vector<torch::Tensor>> seen(3);
  team.run([&](Collectives& c) {
    const double r = static_cast<double>(c.rank());
    // Float and double, a tensor of one element, sizes that do not divide by 3.
    std::vector<torch::Tensor> mine = {torch::arange(7, torch::kFloat32) * (r + 1), torch::full({1}, r),
                                       torch::full({2, 5}, r * 0.5, torch::kFloat64)};
    c.all_reduce_sum(mine);
    seen[c.rank()] = mine;
  });
  for (int r = 0; r < 3; ++r) {
    SCOPED_TRACE(r);
    EXPECT_TRUE(torch::equal(seen[r][0], torch::arange(7, torch::kFloat32) * 6));
    EXPECT_EQ(seen[r][1].item<float>(), 3.0f);
    EXPECT_TRUE(torch::equal(seen[r][2], torch::full({2, 5}, 1.5, torch::kFloat64)));
  }
}

TEST(ThreadTeam, GathersRowsInRankOrderSharesRankZerosBytesAndTimesItsCollectives) {
  ThreadTeam team(3);
  std::vector<torch::Tensor> gathered(3);
  std::vector<std::string> bytes(3), shared(3);
  std::vector<double> seconds(3);
  team.run([&](Collectives& c) {
    const int64_t rows = c.rank() == 0 ? 2 : 1;  // uneven, as BatchShard splits 4 rows
    gathered[c.rank()] = c.all_gather_rows(torch::full({rows, 2}, static_cast<float>(c.rank())), {2, 1, 1});
    bytes[c.rank()] = c.broadcast_bytes(c.is_root() ? std::string("state\0bytes", 11) : std::string());
    shared[c.rank()] = c.share_from_root(c.is_root() ? "config" : "");
    seconds[c.rank()] = c.collective_seconds();
  });
  const auto want = torch::tensor({0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 2.0f, 2.0f}).view({4, 2});
  for (int r = 0; r < 3; ++r) {
    SCOPED_TRACE(r);
    EXPECT_TRUE(torch::equal(gathered[r], want));
    EXPECT_EQ(bytes[r], std::string("state\0bytes", 11));
    EXPECT_EQ(shared[r], "config");
    EXPECT_GT(seconds[r], 0.0);
  }
}

TEST(ThreadTeam, EachRankRunsLibTorchOnOneThreadAndTheCallerKeepsItsCount) {
  const int before = torch::get_num_threads();
  torch::set_num_threads(2);
  std::vector<int> threads(2);
  ThreadTeam team(2);
  team.run([&](Collectives& c) { threads[c.rank()] = torch::get_num_threads(); });
  EXPECT_EQ(threads, (std::vector<int>{1, 1}));
  EXPECT_EQ(torch::get_num_threads(), 2);
  torch::set_num_threads(before);
}

TEST(ThreadTeam, ARankThatThrowsStopsTheOthersAndItsErrorIsRethrown) {
  ThreadTeam team(3);
  std::atomic<int> stopped{0};
  try {
    team.run([&](Collectives& c) {
      if (c.rank() == 2) throw matvae::Error("rank 2 ran out of disk");
      try {
        torch::Tensor t = torch::ones({4});
        c.all_reduce_sum(t);  // rank 2 never comes: the others must not wait for ever
      } catch (...) {
        ++stopped;
        throw;
      }
    });
    FAIL() << "expected the rank's error";
  } catch (const matvae::Error& e) {
    EXPECT_EQ(std::string(e.what()), "rank 2 ran out of disk");
  }
  EXPECT_EQ(stopped.load(), 2);
}

TEST(ThreadTeam, RankZerosFailingCheckStopsEveryRankWithItsOwnError) {
  ThreadTeam team(2);
  std::atomic<bool> others_went_on{false};
  try {
    team.run([&](Collectives& c) {
      c.from_root([] { throw matvae::UsageError("--out runs/x: already holds a run"); });
      others_went_on = true;
    });
    FAIL() << "expected rank 0's UsageError";
  } catch (const matvae::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--out runs/x: already holds a run");
  }
  EXPECT_FALSE(others_went_on.load());
}

TEST(ThreadTeam, ARankThatReturnsEarlyEndsTheOnesWaitingForIt) {
  ThreadTeam team(2);
  try {
    team.run([&](Collectives& c) {
      if (c.rank() == 1) return;  // makes no collective
      c.share_from_root("x");
    });
    FAIL() << "expected an error";
  } catch (const matvae::Error& e) {
    EXPECT_TRUE(matvae_test::contains(e.what(), "never made")) << e.what();
  }
}

TEST(ThreadTeam, RunsAgainAfterAFailure) {
  ThreadTeam team(2);
  EXPECT_THROW(team.run([](Collectives& c) {
    if (c.rank() == 0) throw matvae::Error("once");
    c.share_from_root("");
  }),
               matvae::Error);
  std::vector<std::string> got(2);
  team.run([&](Collectives& c) { got[c.rank()] = c.share_from_root("again"); });
  EXPECT_EQ(got, (std::vector<std::string>{"again", "again"}));
}

}  // namespace
