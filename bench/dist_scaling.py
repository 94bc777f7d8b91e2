#!/usr/bin/env python3
"""Data-parallel scaling on one machine, side by side in one run.

For each model: images/s of one process on one thread, of 2 ranks (`--nproc 2`, one thread each),
and of two independent one-thread trainings running at the same time (what the 2 cores give without
any communication). Scaling efficiency = 2 ranks / the two independent runs together; the collective
share = the time a rank spends in all-reduce, all-gather and their waits / its training time, from
`collective_seconds` in metrics.jsonl. Every figure is the second epoch (the first warms the heap).

    python3 bench/dist_scaling.py --matvae build/matvae --name my-machine   # ~3 min on 2 cores
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

from results_io import commit_stamp, result_record, write_result


def second_epoch(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[1]


def train(matvae, data, model, out, images, batch, nproc=1, seed=0):
    cmd = [matvae, "train", "--data", data, "--model", model, "--epochs", "2", "--limit", str(images),
           "--batch-size", str(batch), "--threads", "1", "--seed", str(seed), "--quiet", "--out", out]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    return subprocess.Popen(cmd)


def wait_all(procs):
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"dist_scaling: {' '.join(p.args)} exited with {p.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matvae", default="build/matvae")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--images", type=int, default=16384, help="training images per epoch")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--models", default="vae,mmd,mrl-mmd")
    ap.add_argument("--name", default=datetime.date.today().isoformat())
    ap.add_argument("--results", default="bench/results")
    a = ap.parse_args()

    commit = commit_stamp()
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models.split(","):
            def run(tag, **kw):
                out = os.path.join(tmp, f"{model}-{tag}")
                return out, train(a.matvae, a.data, model, out, a.images, a.batch_size, **kw)

            one, p = run("one")
            wait_all([p])
            ranks, p = run("ranks", nproc=2)
            wait_all([p])
            ind_a, pa = run("ind-a", seed=0)
            ind_b, pb = run("ind-b", seed=1)
            wait_all([pa, pb])
            e1, e2 = second_epoch(one), second_epoch(ranks)
            ia, ib = second_epoch(ind_a), second_epoch(ind_b)
            independent = ia["images_per_s"] + ib["images_per_s"]
            rows.append({
                "model": model,
                "one_rank_images_per_s": e1["images_per_s"],
                "two_ranks_images_per_s": e2["images_per_s"],
                "two_independent_images_per_s": independent,
                "speedup": e2["images_per_s"] / e1["images_per_s"],
                "efficiency": e2["images_per_s"] / independent,
                "collective_share": e2["collective_seconds"] / e2["seconds"],
                "test_loss_one_rank": e1["test"]["loss"],
                "test_loss_two_ranks": e2["test"]["loss"],
            })
    load_end = os.getloadavg()[0]

    result = result_record(a.name, commit, load_start, load_end, rows, images=a.images, batch_size=a.batch_size)
    md = [f"# Data-parallel scaling: {a.name}", "",
          f"`{result['command']}` at commit {result['commit']}; {result['cores']} cores; "
          f"{a.images} images per epoch at global batch {a.batch_size}, the second epoch of 2; "
          f"load {load_start:.2f} at the start, {load_end:.2f} at the end (the benchmark's own).", "",
          "| model | 1 rank, images/s | 2 ranks | 2 independent runs together | speed-up 2 ranks / 1 | "
          "efficiency 2 ranks / independent | collective share of a rank's step | test loss 1 rank / 2 ranks |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['model']} | {r['one_rank_images_per_s']:.0f} | {r['two_ranks_images_per_s']:.0f} | "
                  f"{r['two_independent_images_per_s']:.0f} | {r['speedup']:.2f}x | {100 * r['efficiency']:.0f}% | "
                  f"{100 * r['collective_share']:.0f}% | {r['test_loss_one_rank']:.4f} / {r['test_loss_two_ranks']:.4f} |")
    write_result(a.results, f"{a.name}-dist", result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
