#!/usr/bin/env python3
"""How two threads share a training step: `--parallel ops` against `--parallel batch`, side by side.

ops: one model, LibTorch's intra-op threads splitting each operation. batch (the default): a thread
team, each thread a one-thread rank with a copy of the model and its share of every batch, the
gradients summed in shared memory by the Adam step that reads them, split over the threads
(src/dist/thread_team.cpp, FusedAdam::update_part_of_sum).
Every figure is the second epoch of 2 (the first warms the heap), the median of the rounds, which run
interleaved; 1 thread is there as the yardstick (2 threads over 1 is the scaling).

    python3 bench/parallel_modes.py --name my-machine   # ~8 min on 2 cores
"""
import argparse
import datetime
import os
import statistics
import tempfile

from busy_machine import train
from results_io import commit_stamp, result_record, write_result

SETTINGS = (  # (label, threads, extra flags)
    ("1 thread", 1, []),
    ("2 threads, ops", 2, ["--parallel", "ops"]),
    ("2 threads, batch", 2, ["--parallel", "batch"]),
)
MODELS = {  # label -> (matvae train flags, training images per epoch)
    "vae": (["--model", "vae"], 38400),
    "mmd": (["--model", "mmd"], 38400),
    "mrl-mmd tied": (["--model", "mrl-mmd", "--nesting", "2,4,8,16,32,64", "--decoder", "tied"], 12800),
    "mrl-mmd separate": (["--model", "mrl-mmd", "--nesting", "2,4,8,16,32,64", "--decoder", "separate"], 12800),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matvae", default="build/matvae")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--batches", default="128,256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--name", default=datetime.date.today().isoformat())
    ap.add_argument("--results", default="bench/results")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]

    commit = commit_stamp()
    load_start = os.getloadavg()[0]
    runs = {}  # (model, batch, setting) -> [images/s per round]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for model, (flags, images) in MODELS.items():
                for batch in batches:
                    for label, threads, extra in SETTINGS:
                        out = os.path.join(tmp, f"r{r}-{model.replace(' ', '-')}-b{batch}-" + label.replace(" ", "").replace(",", "-"))
                        ips = train(a.matvae, a.data, flags + extra, images, batch, threads, {}, out)
                        runs.setdefault((model, batch, label), []).append(ips)
                        print(f"round {r + 1}, {model}, batch {batch}, {label}: {ips:.0f} images/s", flush=True)
    load_end = os.getloadavg()[0]

    rows = []
    for model in MODELS:
        for batch in batches:
            med = {label: statistics.median(runs[(model, batch, label)]) for label, _, _ in SETTINGS}
            rows.append({"model": model, "batch": batch,
                         "images_per_s": {label: runs[(model, batch, label)] for label, _, _ in SETTINGS},
                         "median": med,
                         "batch_over_ops": med["2 threads, batch"] / med["2 threads, ops"],
                         "ops_over_1": med["2 threads, ops"] / med["1 thread"],
                         "batch_over_1": med["2 threads, batch"] / med["1 thread"]})
    result = result_record(a.name, commit, load_start, load_end, rows, rounds=a.rounds)

    md = [f"# How two threads share a step: {a.name}", "",
          f"`{result['command']}` at commit {result['commit']}; {result['cores']} cores; latent 64, hidden 512,256 "
          f"(mrl-mmd: nesting 2..64); images/s of the second epoch of 2, median of {a.rounds} interleaved rounds "
          f"(all rounds in the JSON); load {load_start:.2f} at the start, {load_end:.2f} at the end (the "
          "benchmark's own).", "",
          "| model | batch | 1 thread | 2 threads, ops | 2 threads, batch | batch / ops | ops / 1 thread | "
          "batch / 1 thread |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        m = r["median"]
        md.append(f"| {r['model']} | {r['batch']} | {m['1 thread']:.0f} | {m['2 threads, ops']:.0f} | "
                  f"{m['2 threads, batch']:.0f} | {r['batch_over_ops']:.2f}x | {r['ops_over_1']:.2f}x | "
                  f"{r['batch_over_1']:.2f}x |")
    write_result(a.results, f"{a.name}-parallel", result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
