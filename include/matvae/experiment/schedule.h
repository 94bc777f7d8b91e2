// Running the plan: every task on a work pool of `jobs` workers, each model trained (or resumed, or
// found finished) in its run folder and then evaluated through its cache. The tasks of one model
// run in order on one worker, so that it trains once; the longest start first. Over the ranks of a
// distributed experiment, each model's tasks are claimed through the ranks' store, so that every
// model trains once across them, and every rank ends with every task's result.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "matvae/experiment/plan.h"

namespace matvae {

class RankGroup;

struct ScheduleOptions {
  int64_t jobs = 1;         // models at once (on this rank)
  int64_t job_threads = 1;  // LibTorch threads of each
  const std::atomic<bool>* stop = nullptr;  // Ctrl-C: every running task saves and returns
  std::function<void(const std::string&)> log = nullptr;  // thread-safe; null = silent
  // A distributed experiment: the ranks that share the work (null: this process alone), the
  // results folder, and whether this rank sends rank 0 the files of what it trains (when its
  // results folder is not rank 0's).
  RankGroup* ranks = nullptr;
  std::filesystem::path root;
  bool send_files = false;
};

/// Runs every task, filling its result and evaluated_by. Returns false if stopped (finished work is
/// kept in the run folders and caches); rethrows the first task's failure after the others stopped.
/// Over ranks, every rank must call it with the same tasks in the same order: each rank runs the
/// models it claims, and returns once every rank's results have reached it (false if any rank was
/// stopped); LostRankError if a rank failed or stopped answering.
bool run_tasks(std::vector<Task>& tasks, const ScheduleOptions& options);

}  // namespace matvae
