#!/usr/bin/env python3
"""The kernel micro-benchmarks' results as one Markdown table: each benchmark (its arguments less
"threads") with its time at every thread count and the speedup of the most threads over one. A fused
kernel whose speedup stays near 1.0x runs on one core only (as matvae's all did before the core
library was built with OpenMP).

  bench/kernel_table.py bench/results/NAME-kernels.json > bench/results/NAME-kernels.md

Reads Google Benchmark's JSON; with --benchmark_repetitions the median is used, else the single run.
"""
import json
import re
import sys


def times(benchmarks, medians):
    """{(name without threads, threads): (real time, unit)}, the medians if `medians` (repetitions)."""
    out, errors = {}, []
    for b in benchmarks:
        if b.get("error_occurred"):
            errors.append(f"{b['name']}: {b.get('error_message', 'error')}")
            continue
        if medians and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        m = re.search(r"/threads:(\d+)", name)
        threads = int(m.group(1)) if m else 1
        out[(re.sub(r"/threads:\d+", "", name), threads)] = (b["real_time"], b["time_unit"])
    return out, errors


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    path = sys.argv[1]
    try:
        with open(path) as f:
            doc = json.load(f)
        benchmarks = doc["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"kernel_table: {path}: not Google Benchmark's JSON ({e})")
    medians = any(b.get("aggregate_name") == "median" for b in benchmarks)
    t, errors = times(benchmarks, medians)
    counts = sorted({k[1] for k in t})
    names = list(dict.fromkeys(k[0] for k in t))  # the run's order
    ctx = doc.get("context", {})
    print(f"Kernel micro-benchmarks, commit {ctx.get('commit', '?')}, {ctx.get('date', '?')}, load average "
          f"{ctx.get('load_average', '?')} at the start, {ctx.get('num_cpus', '?')} CPUs. Forward and backward "
          f"unless the file says otherwise; {'median of the repetitions' if medians else 'one run each'}.\n")
    speedup = len(counts) > 1 and counts[0] == 1
    head = [f"{c} thread{'s' if c > 1 else ''}" for c in counts] + ([f"{counts[-1]} over 1"] if speedup else [])
    print("| benchmark | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for n in names:
        cells = [t.get((n, c)) for c in counts]
        row = [f"{c[0]:,.1f} {c[1]}" if c else "" for c in cells]
        if speedup:
            row.append(f"{cells[0][0] / cells[-1][0]:.2f}x" if cells[0] and cells[-1] else "")
        print(f"| `{n}` | " + " | ".join(row) + " |")
    for e in errors:
        print(f"\nFAILED: {e}")


if __name__ == "__main__":
    main()
