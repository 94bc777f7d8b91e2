#!/usr/bin/env python3
"""Training on a busy machine: matvae on 1 and 2 threads while other processes keep cores busy.

LibTorch's and OpenBLAS's worker threads wait for the next parallel region in libgomp, which spins
(GOMP_SPINCOUNT, 300,000 turns by default) before it sleeps. On an idle machine the next region comes
long before that. When another process holds a core, a waiting thread spins away the time that the
thread it waits for needs. This measures, side by side in one run, with 0 and 1 cores kept busy by a
plain busy loop: 1 thread, 2 threads splitting each operation (--parallel ops) as libgomp starts them
and with OMP_WAIT_POLICY=passive (workers sleep at once), and 2 threads as two one-thread ranks
(--parallel batch, the default since session 14, which has no OpenMP team to spin). Every figure is the second epoch of 2 (the first warms the heap), the median
of the rounds, which run interleaved.

    python3 bench/busy_machine.py --name my-machine   # ~12 min on 2 cores
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

from results_io import commit_stamp, result_record, write_result

SETTINGS = (  # (label, threads, environment added, flags added)
    ("1 thread", 1, {}, []),
    ("2 threads, ops", 2, {}, ["--parallel", "ops"]),
    ("2 threads, ops, OMP_WAIT_POLICY=passive", 2, {"OMP_WAIT_POLICY": "passive"}, ["--parallel", "ops"]),
    ("2 threads, batch", 2, {}, ["--parallel", "batch"]),
)
MODELS = {  # label -> (matvae train flags, training images per epoch)
    "vae": (["--model", "vae"], 38400),
    "mrl-mmd": (["--model", "mrl-mmd", "--nesting", "2,4,8,16,32,64", "--decoder", "separate"], 12800),
}


def second_epoch_images_per_s(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if len(lines) != 2:
        sys.exit(f"busy_machine: {run}/metrics.jsonl has {len(lines)} lines, expected 2")
    return lines[1]["images_per_s"]


def train(matvae, data, flags, images, batch, threads, env, out):
    cmd = [matvae, "train", *flags, "--data", data, "--latent", "64", "--hidden", "512,256", "--epochs", "2",
           "--limit", str(images), "--batch-size", str(batch), "--threads", str(threads), "--seed", "0", "--quiet",
           "--out", out]
    # The user's own OpenMP settings would change what is measured: every run gets exactly `env`.
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    p = subprocess.run(cmd, env={**base, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"busy_machine: {' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return second_epoch_images_per_s(out)


def start_busy(n):
    """n processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs):
    for p in procs:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matvae", default="build/matvae")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--busy", default="0,1", help="numbers of cores kept busy, e.g. 0,1")
    ap.add_argument("--name", default=datetime.date.today().isoformat())
    ap.add_argument("--results", default="bench/results")
    a = ap.parse_args()
    busy_levels = [int(b) for b in a.busy.split(",")]

    commit = commit_stamp()
    load_start = os.getloadavg()[0]
    runs = {}  # (model, busy, setting) -> [images/s per round]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for busy in busy_levels:
                burners = start_busy(busy)
                try:
                    for model, (flags, images) in MODELS.items():
                        for i, (label, threads, env, extra) in enumerate(SETTINGS):
                            out = os.path.join(tmp, f"r{r}-b{busy}-{model}-{i}")
                            ips = train(a.matvae, a.data, flags + extra, images, a.batch_size, threads, env, out)
                            runs.setdefault((model, busy, label), []).append(ips)
                            print(f"round {r + 1}, {busy} busy, {model}, {label}: {ips:.0f} images/s", flush=True)
                finally:
                    stop(burners)
    load_end = os.getloadavg()[0]

    rows = []
    for model in MODELS:
        for busy in busy_levels:
            default_2 = statistics.median(runs[(model, busy, "2 threads, ops")])
            for label, threads, env, extra in SETTINGS:
                v = runs[(model, busy, label)]
                rows.append({"model": model, "busy_cores": busy, "setting": label, "threads": threads, "env": env,
                             "flags": extra,
                             "images_per_s": v, "median": statistics.median(v),
                             "vs_2_threads_ops": statistics.median(v) / default_2})
    result = result_record(a.name, commit, load_start, load_end, rows, batch_size=a.batch_size, rounds=a.rounds)

    md = [f"# Training on a busy machine: {a.name}", "",
          f"`{result['command']}` at commit {result['commit']}; {result['cores']} cores; batch {a.batch_size}, "
          f"latent 64, hidden 512,256 (mrl-mmd: nesting 2..64, separate decoders); images/s of the second epoch "
          f"of 2, median of {a.rounds} interleaved rounds (all rounds in brackets); a busy core is a Python busy "
          f"loop; load {load_start:.2f} at the start, {load_end:.2f} at the end (the benchmark's own).", "",
          "| model | busy cores | matvae | images/s, median | rounds | vs 2 threads, ops (libgomp's default policy) |",
          "| --- | ---: | --- | ---: | --- | ---: |"]
    for r in rows:
        md.append(f"| {r['model']} | {r['busy_cores']} | {r['setting']} | {r['median']:.0f} | "
                  f"{', '.join(f'{x:.0f}' for x in r['images_per_s'])} | {r['vs_2_threads_ops']:.2f}x |")
    write_result(a.results, f"{a.name}-busy", result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
