// Running the plan: every task on a work pool of `jobs` workers, each model trained (or resumed, or
// found finished) in its run folder and then evaluated through its cache. The tasks of one model
// run in order on one worker, so that it trains once; the longest start first.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "matvae/experiment/plan.h"

namespace matvae {

struct ScheduleOptions {
  int64_t jobs = 1;         // models at once
  int64_t job_threads = 1;  // LibTorch threads of each
  const std::atomic<bool>* stop = nullptr;  // Ctrl-C: every running task saves and returns
  std::function<void(const std::string&)> log = nullptr;  // thread-safe; null = silent
};

/// Runs every task, filling its result and evaluated_by. Returns false if stopped (finished work is
/// kept in the run folders and caches); rethrows the first task's failure after the others stopped.
bool run_tasks(std::vector<Task>& tasks, const ScheduleOptions& options);

}  // namespace matvae
