// What the run is made on: version, commit, threads, BLAS speed, how busy the other processes keep
// the cores. Used for the BLAS and busy-machine warnings, and recorded in run folders and reports.
#pragma once

#include <cstdint>
#include <string>

namespace matvae {

std::string version_string();  // "matvae 0.1.0 (commit abc123)"
std::string git_commit();

/// float32 matrix-product speed through LibTorch on the current thread setting, in GFLOP/s,
/// measured with n x n products for about `seconds`.
double measure_matmul_gflops(int64_t n = 512, double seconds = 0.2);

/// The BLAS libraries mapped into this process (from /proc/self/maps), e.g.
/// "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblasp-r0.3.21.so"; "unknown" where not readable.
std::string blas_libraries();

/// The 1-minute load average, or -1 where /proc/loadavg cannot be read.
double load_average();

/// A one-line warning if matrix products are far below what an optimised BLAS gives on this kind
/// of CPU (the reference BLAS is ~10x slower), naming the fix; empty if all is well.
std::string blas_warning();

/// A steady clock in seconds (from an arbitrary start): for intervals, never for dates.
double steady_seconds();

/// The CPU time the calling thread has used, in seconds: a measure that other processes on the
/// machine do not inflate.
double thread_cpu_seconds();

/// CPU time used so far by the whole machine (every core, /proc/stat) and by this process (all its
/// threads, /proc/self/stat), in seconds, with a steady wall clock: two readings tell how many cores
/// other processes kept busy in between. ok = false where /proc cannot be read.
struct CpuTimes {
  bool ok = false;
  double wall = 0;     // steady clock, s
  double machine = 0;  // busy time of all cores together (not idle, not waiting for I/O), s
  double self = 0;     // this process's user + system time, s
};
CpuTimes cpu_times();

/// The machine's online cores: what /proc/stat's totals add up.
int64_t online_cores();

/// How many cores, on average, processes other than this one kept busy between `since` and `now`;
/// -1 where the readings cannot tell (either failed, or they are under a second apart).
double others_busy_cores(const CpuTimes& since, const CpuTimes& now);

/// A one-line warning (or empty) when, between `since` and `now` (at least 1 s apart), other
/// processes kept so many of the `cores` busy that this process's `threads` could not each have
/// one. `split_operations`: the threads split each operation (OpenMP teams, --parallel ops); they
/// spin while they wait for one another, so a team that shares its cores runs several times slower
/// than fewer threads on the free ones. Threads that are ranks (--parallel batch) sleep instead, and
/// run about as fast as the free cores' share (bench/busy_machine.py). The warning says how many
/// threads the free cores hold.
std::string busy_machine_warning(const CpuTimes& since, const CpuTimes& now, int64_t threads, int64_t cores,
                                 bool split_operations);

}  // namespace matvae
