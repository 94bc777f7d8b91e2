#!/usr/bin/python3
"""The machine's ceiling: float32 matrix-product GFLOP/s through torch (the same libtorch_cpu and BLAS
that LibTorch C++ links on Debian), on each requested number of threads.

  ceiling.py [--size 2048] [--seconds 1.0] [--threads 1,2]

prints one JSON line: {"size": n, "seconds": s, "gflops": {"1": ..., "2": ...}, "reps": {...}}.
"""
import argparse
import json
import os
import re
import sys
import time

import torch


def measure(n, seconds, threads):
    torch.set_num_threads(threads)
    with torch.no_grad():
        a, b = torch.rand(n, n), torch.rand(n, n)
        c = torch.empty(n, n)
        torch.mm(a, b, out=c)  # warm-up: thread pool start, page faults
        torch.mm(a, b, out=c)
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return 2.0 * n ** 3 * reps / elapsed / 1e9, reps


def mapped_libraries():
    """Real paths of the libtorch_cpu, BLAS and OpenMP libraries this process has loaded."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if re.match(r"lib(torch_cpu|c10|blas|openblas|gomp|mkl)", name):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    out = {"size": a.size, "seconds": a.seconds, "gflops": {}, "reps": {}, "torch": torch.__version__}
    for t in [int(s) for s in a.threads.split(",")]:
        g, reps = measure(a.size, a.seconds, t)
        out["gflops"][str(t)] = g
        out["reps"][str(t)] = reps
    out["libraries"] = mapped_libraries()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
