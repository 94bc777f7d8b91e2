// What the run is made on: version, commit, threads, BLAS speed. Used for the BLAS warning,
// and recorded in run folders and reports.
#pragma once

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

}  // namespace matvae
