#!/usr/bin/python3
"""The benchmark driver behind scripts/bench (run it through that script).

Measures in one run, side by side: the float32 matrix-product ceiling; matvae's training throughput
and the plain PyTorch reference's (bench/reference/models.py) on the same grid; one MRL-MMD-VAE
against the separate MMD-VAEs it replaces; encode and eval times; optionally the whole
`experiment --profile quick`. Writes bench/results/<name>.json (every raw number) and <name>.md.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATVAE = os.path.join(ROOT, "build", "matvae")
DATA = os.path.join(ROOT, "data", "mnist")
REFERENCE = os.path.join(ROOT, "bench", "reference", "models.py")
CEILING = os.path.join(ROOT, "bench", "ceiling.py")
PRODUCTS = os.path.join(ROOT, "bench", "products.py")
RESULTS = os.path.join(ROOT, "bench", "results")

HIDDEN = (512, 256)
PIXELS = 784
LATENT = 64
NESTING = (2, 4, 8, 16, 32, 64)
LAMBDA_NOTE = "lambda 100, gaussian kernel exp(-|a-b|^2/(2m)), biased MMD, Adam lr 1e-3"
BATCHES = (128, 256)
THREADS = (1, 2)           # the grid's thread counts (--quick-steps: 1 only; see main)
# (label, model, decoder): the rows of the training grid.
MODELS = (("vae", "vae", None), ("mmd", "mmd", None),
          ("mrl-mmd tied", "mrl-mmd", "tied"), ("mrl-mmd separate", "mrl-mmd", "separate"))

TARGET_CEILING = 0.70     # of the matmul ceiling at the most threads (2), batch 256, single-model training
TARGET_RATIO = {"vae": 1.5, "mmd": 1.5, "mrl-mmd": 2.5}   # matvae / reference images/s (issue 17)
TARGET_MRL = 0.35         # MRL training time / sum of the separate models' training time
TARGET_QUICK_S = 600      # wall seconds of experiment --profile quick (README command 1's main job)
MRL_ROUNDS = 3            # section 4 trains each of its models this many times, interleaved, and takes medians
PREFIX_SAMPLES = (2,)     # section 4 also times MRL training S random prefixes per step (--prefix-sample S)
QUICK_METRICS = ("probe", "knn1", "knn5", "recon", "mse", "mmd")

CEILING_THREADS = (1, 2)
QUICK_SUBSET = (1024, 256)  # --quick-steps: train / test images
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
LIB_PATTERN = re.compile(r"^lib(torch_cpu|c10|blas|openblas|gomp|mkl)")


class StepFailed(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd; returns (wall seconds, stdout). Raises StepFailed with the tail of stderr on failure."""
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        raise StepFailed(f"{' '.join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))}: "
                         f"exit {p.returncode}: {' | '.join(tail)}")
    return wall, p.stdout


# ---------------------------------------------------------------- counting

def macs_per_image(model, decoder, latent=LATENT, nesting=NESTING):
    """Multiply-accumulates of one forward pass for one image, from the layer sizes."""
    h1, h2 = HIDDEN
    encoder = PIXELS * h1 + h1 * h2 + 2 * h2 * latent          # two layers, mu and logvar heads
    rest = h2 * h1 + h1 * PIXELS                               # decoder after its first layer
    if model == "mrl-mmd":                                     # one decoder pass per prefix
        return encoder + sum(m * h2 + rest for m in nesting)  # tied and separate: m x 256 first layer
    return encoder + latent * h2 + rest


def useful_flops_per_image(model, decoder, latent=LATENT, nesting=NESTING):
    """Forward, weight-gradient and input-gradient products, less the first layer's input gradient: the
    images need none, and neither autograd nor products.py computes it."""
    return 2 * (3 * macs_per_image(model, decoder, latent, nesting) - PIXELS * HIDDEN[0])


# ---------------------------------------------------------------- data

def have_data(d):
    return all(os.path.exists(os.path.join(d, f)) or os.path.exists(os.path.join(d, f + ".gz")) for f in IDX_FILES)


def open_idx(d, name):
    import gzip
    path = os.path.join(d, name)
    return open(path, "rb") if os.path.exists(path) else gzip.open(path + ".gz", "rb")


def idx_count(d, name):
    with open_idx(d, name) as f:
        return struct.unpack(">II", f.read(8))[1]


def write_subset(src, dst, n_train, n_test):
    """A small IDX folder: the first n_train / n_test images and labels of src (for --quick-steps)."""
    os.makedirs(dst, exist_ok=True)
    for name in IDX_FILES:
        n = n_train if name.startswith("train") else n_test
        with open_idx(src, name) as f:
            magic = struct.unpack(">I", f.read(4))[0]
            ndim = magic & 0xFF
            dims = list(struct.unpack(">" + "I" * ndim, f.read(4 * ndim)))
            n = min(n, dims[0])
            item = 1
            for d in dims[1:]:
                item *= d
            body = f.read(n * item)
        dims[0] = n
        with open(os.path.join(dst, name), "wb") as f:
            f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * ndim, *dims) + body)


# ---------------------------------------------------------------- measurements

def matvae_train(tmp, data, model, decoder, latent, batch, threads, steps, epochs, tag, extra=()):
    out = os.path.join(tmp, tag)
    cmd = [MATVAE, "train", "--model", model, "--data", data, "--latent", str(latent),
           "--hidden", ",".join(map(str, HIDDEN)), "--batch-size", str(batch), "--epochs", str(epochs),
           "--limit", str(steps * batch), "--threads", str(threads), "--seed", "0", "--quiet", "--out", out]
    if model == "mrl-mmd":
        cmd += ["--nesting", ",".join(map(str, NESTING)), "--decoder", decoder]
    cmd += list(extra)
    wall, _ = run(cmd)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    if len(lines) != epochs:
        raise StepFailed(f"{out}/metrics.jsonl: {len(lines)} lines, expected {epochs}")
    epochs_raw = [{"seconds": l["seconds"], "images_per_s": l["images_per_s"], "step": l["step"]} for l in lines]
    return out, {
        "command": " ".join(cmd[1:]).replace(tmp, "<tmp>"),
        "wall_s": wall,
        "epochs": epochs_raw,
        "images_per_epoch": steps * batch,
        "train_seconds": sum(e["seconds"] for e in epochs_raw),
        "images_per_s": epochs_raw[-1]["images_per_s"],      # the last epoch: past warm-up
        "seconds": epochs_raw[-1]["seconds"],
    }


# glibc's heap thresholds, as matvae sets them for itself (src/util/threads.cpp, keep_freed_memory): the
# reference runs with the same ones, through glibc's environment variables. Without them glibc returns a
# step's large temporaries to the system and page-faults them back in on the next step, and the plain
# reference's MMD-VAE step took 1.5-5x as long from one identical run to the next: the ratio would
# measure glibc's heap, not the code.
REFERENCE_HEAP_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def reference_train(data, model, decoder, batch, threads, steps, warmup, limit):
    cmd = [sys.executable, REFERENCE, "--model", model, "--decoder", decoder or "tied", "--batch", str(batch),
           "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup), "--data", data,
           "--limit", str(limit)]
    wall, out = run(cmd, env={**os.environ, **REFERENCE_HEAP_ENV})
    r = json.loads(out.strip().splitlines()[-1])
    r["wall_s"] = wall
    return r


def products_alone(model, decoder, batch, threads, seconds):
    """One training step's layer products alone at this cell's shapes (products.py), in matvae's layout and,
    where it differs (mrl-mmd), the reference's: the lower bound on a step's time at this BLAS. On more
    than one thread also matvae's products split as its ranks split the batch ("ranks": each thread its
    rows' products on one thread), the way matvae's own 2-thread cells train."""
    out = {}
    runs = [(layout, []) for layout in (("matvae", "reference") if model == "mrl-mmd" else ("matvae",))]
    if threads > 1:
        runs.append(("ranks", ["--ranks"]))
    for key, extra in runs:
        _, text = run([sys.executable, PRODUCTS, "--cells", f"{model}:{decoder or '-'}:{batch}:{threads}",
                       "--layout", "reference" if key == "reference" else "matvae", "--seconds", str(seconds),
                       *extra])
        out[key] = json.loads(text.strip().splitlines()[-1])["cells"][0]
    out.setdefault("reference", out["matvae"])
    return out


def fastest_products(products):
    """matvae's products alone in the faster of its layouts (one set on every thread, or split as ranks)."""
    return max((products[k] for k in ("matvae", "ranks") if k in products), key=lambda p: p["images_per_s"])


def quick_experiment(binary, out):
    """Wall seconds of `experiment --profile quick` (all cores) with `binary`, and the load at its start."""
    log(f"experiment --profile quick with {binary} (about 5-8 minutes)")
    load = loadavg()
    wall, _ = run([binary, "experiment", "--profile", "quick", "--out", out, "--data-root", os.path.join(ROOT, "data"),
                   "--quiet"])
    return wall, load


def compare_results(before_path, after_path):
    """Per metric, the largest |after - before| over every dataset, row, m and seed both results.json hold."""
    with open(before_path) as f:
        before = json.load(f)["results"]
    with open(after_path) as f:
        after = json.load(f)["results"]
    worst = {}
    for ds, rows in after.items():
        for row, per_m in rows.items():
            for m, per_seed in per_m.items():
                for seed, metrics in per_seed.items():
                    old = before.get(ds, {}).get(row, {}).get(m, {}).get(seed)
                    if not old:
                        continue
                    for k in QUICK_METRICS:
                        if isinstance(metrics.get(k), (int, float)) and isinstance(old.get(k), (int, float)):
                            d = abs(metrics[k] - old[k])
                            if k not in worst or d > worst[k]["diff"]:
                                worst[k] = {"diff": d, "where": f"{ds} {row} m={m} seed {seed}",
                                            "before": old[k], "after": metrics[k]}
    return worst


def cell_key(label, batch, threads):
    return f"{label}|b{batch}|t{threads}"


# ---------------------------------------------------------------- report

def fmt(x, spec=".0f", missing="–"):
    return missing if x is None else format(x, spec)


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


def verdict(ok):
    return "–" if ok is None else ("pass" if ok else "short")


def render(res):
    L = []
    m = res["meta"]
    L.append(f"# matvae benchmark: {res['name']}")
    L.append("")
    L.append(f"commit `{m['commit']}`{' (dirty tree)' if m['dirty'] else ''}, {m['date']}, host {m['host']}, "
             f"{m['cores']} cores ({m['cpu']}), load {m['loadavg_start']} at start / {m['loadavg_end']} at end"
             f"{', **--quick-steps: indicative figures only**' if m['quick_steps'] else ''}.")
    L.append("")
    c = res["ceiling"]
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | goal | verdict | what bounds it |")
    L.append("|---|---|---|---|---|")
    for t in res["targets"]:
        L.append(f"| {t['what']} | {t['measured']} | {t['goal']} | {verdict(t['pass'])} | {t.get('bound', '')} |")
    L.append("")
    L.append("## 1. Ceiling: float32 matrix product through torch")
    L.append("")
    if c.get("error"):
        L.append(f"failed: {c['error']}")
    else:
        ws = c.get("windows", [])
        L.append(f"The fastest of {len(ws)} windows of {c['seconds']} s (before each model's cells and after the "
                 "grid): the machine's speed moves over minutes on a shared VM, and the ceiling is what it reaches, "
                 "not what one moment gave.")
        L.append("")
        L.append(f"| threads | GFLOP/s, the fastest product ({c['size']}x{c['size']} @ {c['size']}x{c['size']}) "
                 f"| GFLOP/s, the best window's mean | each window's fastest |")
        L.append("|---|---|---|---|")
        for t, g in c["gflops"].items():
            each = ", ".join(f"{w['gflops'][t]:.1f}" for w in ws)
            L.append(f"| {t} | {g:.1f} | {c['gflops_mean'][t]:.1f} | {each} |")
    L.append("")
    L.append("## 2-3. Training throughput: matvae vs plain PyTorch reference")
    L.append("")
    L.append(f"images/s over {res['settings']['steps']} steps after warm-up (matvae: its last epoch of "
             f"{res['settings']['epochs']}; reference: after {res['settings']['warmup']} warm-up steps). "
             "GFLOP/s = images/s x useful FLOPs per image (see the notes; decoder counted once per prefix for mrl-mmd). "
             "% ceiling = matvae GFLOP/s / the ceiling on as many threads.")
    L.append("")
    L.append("| model | batch | threads | matvae img/s | matvae GFLOP/s | % ceiling | reference img/s "
             "| matvae / reference | ratio goal | ratio | ceiling goal | ceiling |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cell in res["grid"]:
        mv, rf = cell.get("matvae") or {}, cell.get("reference") or {}
        ceil_goal = f"≥ {TARGET_CEILING:.0%}" if cell["ceiling_target"] else ""
        L.append(f"| {cell['label']} | {cell['batch']} | {cell['threads']} | {fmt(mv.get('images_per_s'))} "
                 f"| {fmt(cell.get('gflops'), '.1f')} | {pct(cell.get('ceiling_fraction'))} "
                 f"| {fmt(rf.get('images_per_s'))} | {fmt(cell.get('ratio'), '.2f', '–')}{'x' if cell.get('ratio') else ''} "
                 f"| ≥ {cell['ratio_goal']}x | {verdict(cell.get('ratio_pass'))} "
                 f"| {ceil_goal} | {verdict(cell.get('ceiling_pass')) if cell['ceiling_target'] else ''} |")
    L.append("")
    L.append("### What the layer products alone allow")
    L.append("")
    L.append("One step's matrix products at the model's own shapes, timed alone in the same cell (bench/products.py: "
             "torch.mm into preallocated outputs, nothing else): on the cell's threads, and on 2 threads also split as "
             "matvae's ranks split the batch (each thread its half-batch's products on one thread, a barrier after "
             "each step). No implementation of the step on this BLAS runs faster than the faster of the two, "
             "so they bound both targets. matvae / products alone and their % ceiling take the faster. % ceiling counts FLOPs as the table above does. ratio bound = the faster "
             "layout's products-alone images/s / the reference's images/s: the most any rewrite of everything "
             "but the products could gain over the reference. the goal needs = the % ceiling of a step at the ratio "
             "goal times the reference's images/s: above the products' own share no step on this BLAS reaches "
             "the goal, above 100% no step on this machine.")
    L.append("")
    L.append("| model | batch | threads | products alone img/s | split as ranks, img/s | their % ceiling (the faster) "
             "| matvae / products alone | reference layout img/s | ratio bound | ratio goal | the goal needs, % ceiling |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for cell in res["grid"]:
        p = cell.get("products") or {}
        pm, pr, pk = p.get("matvae") or {}, p.get("reference") or {}, p.get("ranks") or {}
        L.append(f"| {cell['label']} | {cell['batch']} | {cell['threads']} | {fmt(pm.get('images_per_s'))} "
                 f"| {fmt(pk.get('images_per_s'))} "
                 f"| {pct(cell.get('products_ceiling_fraction'))} | {pct(cell.get('of_products'))} "
                 f"| {fmt(pr.get('images_per_s'))} | {fmt(cell.get('ratio_bound'), '.2f')}{'x' if cell.get('ratio_bound') else ''} "
                 f"| ≥ {cell['ratio_goal']}x | {pct(cell.get('goal_needs_ceiling_fraction'))} |")
    errs = [f"{cell['label']} b{cell['batch']} t{cell['threads']}: {e}" for cell in res["grid"] for e in cell.get("errors", [])]
    for e in errs:
        L.append(f"\nfailed: {e}")
    L.append("")
    s = res["mrl_vs_separate"]
    L.append(f"## 4. One MRL-MMD-VAE vs the {len(NESTING)} separate MMD-VAEs (latent {', '.join(map(str, NESTING))})")
    L.append("")
    L.append(f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}, batch {s['batch']}, {s['epochs']} epochs of {s['images_per_epoch']} images each; "
             "training seconds (metrics.jsonl \"seconds\", test evaluation excluded), summed over the epochs; "
             f"every model trained once per round, {s.get('rounds', 1)} round{'s' if s.get('rounds', 1) != 1 else ''} "
             "one after the other, each figure the model's median over the rounds.")
    L.append("")
    L.append("| run | training s | last epoch s |")
    L.append("|---|---|---|")
    for r in s["separate"]:
        L.append(f"| mmd latent {r['latent']} | {fmt(r.get('train_seconds'), '.2f')} | {fmt(r.get('seconds'), '.2f')} |")
    L.append(f"| **sum of separate** | {fmt(s.get('separate_seconds'), '.2f')} | {fmt(s.get('separate_last_epoch_seconds'), '.2f')} |")
    for dec, r in s["mrl"].items():
        L.append(f"| mrl-mmd {dec} | {fmt(r.get('train_seconds'), '.2f')} | {fmt(r.get('seconds'), '.2f')} |")
    L.append("")
    L.append("| MRL / separate | ratio (training s) | ratio (last epoch) | each round's ratio | goal | verdict |")
    L.append("|---|---|---|---|---|---|")
    for dec, r in s["ratio"].items():
        rounds = ", ".join(f"{x:.3f}" for x in r.get("per_round", []))
        L.append(f"| {dec} | {fmt(r.get('total'), '.3f')} | {fmt(r.get('last_epoch'), '.3f')} | {rounds or '–'} "
                 f"| ≤ {TARGET_MRL} | {verdict(None if r.get('total') is None else r['total'] <= TARGET_MRL)} |")
    mrl_macs = macs_per_image("mrl-mmd", "tied")
    sep_macs = sum(macs_per_image("mmd", None, latent=m) for m in NESTING)
    L.append("")
    L.append(f"What the work itself sets: one MRL-MMD-VAE step runs the encoder once and the decoder once per "
             f"prefix, {mrl_macs / 1e6:.2f}M multiply-adds per image, against {sep_macs / 1e6:.2f}M for the "
             f"{len(NESTING)} separate models together, a ratio of {mrl_macs / sep_macs:.3f} at equal speed per "
             f"FLOP. A measured ratio is lower only as far as MRL's larger products run faster per FLOP; "
             f"{TARGET_MRL} needs them {mrl_macs / sep_macs / TARGET_MRL:.2f}x faster, or fewer prefixes per step.")
    for e in s.get("errors", []):
        L.append(f"\nfailed: {e}")
    L.append("")
    e = res["inference"]
    L.append("## 5. Inference and evaluation (the mrl-mmd tied run of section 4)")
    L.append("")
    L.append("| what | wall s | images | images/s |")
    L.append("|---|---|---|---|")
    for k in ("encode_test", "encode_train"):
        r = e.get(k)
        if r:
            L.append(f"| `matvae encode --split {r['split']} --dim {LATENT}` (end to end, all cores) "
                     f"| {r['wall_s']:.2f} | {r['images']} | {r['images_per_s']:.0f} |")
    if e.get("encode_marginal_images_per_s"):
        L.append(f"| encode, marginal (train minus test: start-up removed) | | | {e['encode_marginal_images_per_s']:.0f} |")
    if e.get("eval"):
        r = e["eval"]
        L.append(f"| `matvae eval --run` (probe + 1/5-NN + recon + MMD, prefixes {r['prefixes']}, "
                 f"{r['threads']} thread{'s' if r['threads'] != 1 else ''}, {r['train_images']} train / {r['test_images']} test images) "
                 f"| {r['wall_s']:.1f} | | |")
    for err in e.get("errors", []):
        L.append(f"\nfailed: {err}")
    L.append("")
    q = res.get("quick_experiment")
    L.append("## 6. `matvae experiment --profile quick`")
    L.append("")
    if not q:
        L.append("not run (pass --with-quick).")
    elif q.get("error"):
        L.append(f"failed: {q['error']}")
    else:
        L.append(f"wall time {q['wall_s']:.0f} s"
                 + (f" (goal ≤ {TARGET_QUICK_S} s); before the change {q['baseline_s']:.0f} s ({q['baseline_how']}): "
                    f"{q['speedup']:.2f}x" if q.get("baseline_s") else
                    " (pass --quick-baseline-binary PATH to compare with the pre-issue build)."))
        if q.get("baseline_version"):
            L.append("")
            L.append(f"Baseline: `{q['baseline_version']}`. Largest difference per metric between the two runs' "
                     "results.json (same seeds, every dataset, row and m):")
            L.append("")
            L.append("| metric | largest abs. difference | where | before | after |")
            L.append("|---|---|---|---|---|")
            for k, d in q.get("differences", {}).items():
                L.append(f"| {k} | {d['diff']:.4g} | {d['where']} | {d['before']:.4g} | {d['after']:.4g} |")
    L.append("")
    L.append("## Notes")
    L.append("")
    for n in res["notes"]:
        L.append(f"- {n}")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main

def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def matvae_libraries():
    try:
        out = subprocess.run(["ldd", MATVAE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return []
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and LIB_PATTERN.match(parts[0]):
            libs.add(os.path.realpath(parts[2]))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", help="results name (default: <date>-<hostname>)")
    ap.add_argument("--quick-steps", action="store_true",
                    help="shrink every measurement to a few seconds (a smoke test; the figures mean little)")
    ap.add_argument("--with-quick", action="store_true", help="also time `matvae experiment --profile quick` (~15 min)")
    ap.add_argument("--quick-baseline", type=float, metavar="SECONDS",
                    help="the pre-issue wall time of --profile quick, to report the speed-up against")
    ap.add_argument("--quick-baseline-binary", metavar="PATH",
                    help="a matvae built from before the performance work: its quick experiment runs right after "
                         "this one, and the table gives the speed-up and the largest metric differences")
    a = ap.parse_args()
    if a.quick_baseline_binary and not a.with_quick:
        sys.exit("bench: --quick-baseline-binary needs --with-quick")
    if a.quick_baseline_binary and not os.access(a.quick_baseline_binary, os.X_OK):
        sys.exit(f"bench: --quick-baseline-binary {a.quick_baseline_binary}: not an executable file")

    if not os.access(MATVAE, os.X_OK):
        sys.exit("bench: build/matvae is missing; run scripts/build first")
    if not have_data(DATA):
        sys.exit("bench: data/mnist is missing or incomplete; run build/matvae data fetch first")
    host = socket.gethostname()
    name = a.name or f"{datetime.date.today().isoformat()}-{host}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        sys.exit(f"bench: --name {name!r}: use letters, digits, '.', '_' and '-' only")

    quick = a.quick_steps
    steps = 3 if quick else 150        # steps per epoch (matvae) and timed steps (reference)
    threads_list = (1,) if quick else THREADS
    epochs = 2                         # matvae: the first epoch is the warm-up, the last is reported
    warmup = 2 if quick else 5         # reference warm-up steps
    ceiling_size, ceiling_seconds = (1024, 0.25) if quick else (2048, 1.0)
    products_seconds = 0.1 if quick else 1.0

    cores = os.cpu_count() or 1
    res_threads = list(threads_list)
    res = {
        "name": name,
        "meta": {
            "commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": host,
            "cores": cores,
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores,
            "cpu": cpu_model(),
            "matvae_version": "",
            "python": sys.version.split()[0],
            "quick_steps": quick,
            "loadavg_start": loadavg(),
            "loadavg_end": None,
        },
        "settings": {"steps": steps, "epochs": epochs, "warmup": warmup, "hidden": list(HIDDEN), "latent": LATENT,
                     "nesting": list(NESTING), "batches": list(BATCHES), "threads": res_threads,
                     "losses": LAMBDA_NOTE},
        "ceiling": {},
        "grid": [],
        "mrl_vs_separate": {},
        "inference": {},
        "quick_experiment": None,
        "targets": [],
        "notes": [],
    }
    try:
        res["meta"]["matvae_version"] = run([MATVAE, "--version"])[1].strip()
    except (StepFailed, OSError):
        pass
    failures = []
    tmp = tempfile.mkdtemp(prefix="matvae-bench-")
    started = time.perf_counter()
    try:
        data = DATA
        if quick:
            data = os.path.join(tmp, "mnist-subset")
            write_subset(DATA, data, *QUICK_SUBSET)
        res["settings"]["data"] = ("data/mnist" if data == DATA else
                                   f"first {QUICK_SUBSET[0]} train / {QUICK_SUBSET[1]} test images of data/mnist")

        # 1. ceiling: measured before each model's cells and after the grid, the fastest taken. One
        # window at the start alone had read 30% low once (a slow stretch of this shared VM), and every
        # % ceiling figure of that run came out too high.
        windows = []

        def measure_ceiling(when):
            log(f"ceiling ({when}): float32 matrix product on " + " and ".join(map(str, CEILING_THREADS)) + " threads")
            try:
                _, out = run([sys.executable, CEILING, "--size", str(ceiling_size), "--seconds", str(ceiling_seconds),
                              "--threads", ",".join(map(str, CEILING_THREADS))])
                windows.append({"when": when, **json.loads(out.strip().splitlines()[-1])})
            except (StepFailed, ValueError) as e:
                failures.append(str(e))

        measure_ceiling("start")
        lib_m, lib_p = matvae_libraries(), (windows[0].get("libraries", []) if windows else [])
        res["meta"]["libraries"] = {"matvae": lib_m, "python_torch": lib_p, "same": bool(lib_m) and set(lib_m) <= set(lib_p)}

        # 2-3. training grid, matvae and the reference interleaved cell by cell
        dirs = {}
        for i, (label, model, decoder) in enumerate(MODELS):
            if i > 0:
                measure_ceiling(f"before {label}")
            for batch in BATCHES:
                for threads in threads_list:
                    log(f"train {label}, batch {batch}, {threads} thread(s): matvae, then reference")
                    cell = {"label": label, "model": model, "decoder": decoder, "batch": batch, "threads": threads,
                            "macs_per_image": macs_per_image(model, decoder),
                            "useful_flops_per_image": useful_flops_per_image(model, decoder),
                            "ratio_goal": TARGET_RATIO[model],
                            "ceiling_target": batch == max(BATCHES) and threads == max(threads_list),
                            "errors": []}
                    try:
                        run_dir, mv = matvae_train(tmp, data, model, decoder, LATENT, batch, threads, steps, epochs,
                                                   f"{model}-{decoder or 'single'}-b{batch}-t{threads}")
                        dirs[cell_key(label, batch, threads)] = run_dir
                        cell["matvae"] = mv
                        cell["gflops"] = mv["images_per_s"] * cell["useful_flops_per_image"] / 1e9
                    except StepFailed as e:
                        cell["errors"].append(str(e))
                        failures.append(str(e))
                    try:
                        cell["reference"] = reference_train(data, model, decoder, batch, threads, steps, warmup,
                                                            steps * batch)
                    except (StepFailed, ValueError) as e:
                        cell["errors"].append(str(e))
                        failures.append(str(e))
                    try:
                        cell["products"] = products_alone(model, decoder, batch, threads, products_seconds)
                        best = max(p["images_per_s"] for p in cell["products"].values())
                        if cell.get("matvae"):
                            cell["of_products"] = (cell["matvae"]["images_per_s"]
                                                   / fastest_products(cell["products"])["images_per_s"])
                        if cell.get("reference"):
                            cell["ratio_bound"] = best / cell["reference"]["images_per_s"]
                    except (StepFailed, ValueError, KeyError, IndexError) as e:
                        cell["errors"].append(str(e))
                        failures.append(str(e))
                    if cell.get("matvae") and cell.get("reference"):
                        cell["ratio"] = cell["matvae"]["images_per_s"] / cell["reference"]["images_per_s"]
                        cell["ratio_pass"] = cell["ratio"] >= cell["ratio_goal"]
                    res["grid"].append(cell)
        measure_ceiling("after the grid")
        if windows:
            res["ceiling"] = {"size": windows[0]["size"], "seconds": windows[0]["seconds"], "windows": windows,
                              "gflops": {t: max(w["gflops"][t] for w in windows) for t in windows[0]["gflops"]},
                              "gflops_mean": {t: max(w["gflops_mean"][t] for w in windows) for t in windows[0]["gflops"]}}
        else:
            res["ceiling"] = {"error": "no ceiling window ran", "gflops": {}}
        ceiling = {int(k): v for k, v in res["ceiling"]["gflops"].items()}
        for cell in res["grid"]:
            top = ceiling.get(cell["threads"])
            if not top:
                continue
            if "gflops" in cell:
                cell["ceiling_fraction"] = cell["gflops"] / top
                if cell["ceiling_target"]:
                    cell["ceiling_pass"] = cell["ceiling_fraction"] >= TARGET_CEILING
            if "products" in cell:
                cell["products_ceiling_fraction"] = (
                    fastest_products(cell["products"])["images_per_s"] * cell["useful_flops_per_image"] / 1e9 / top)
            if cell.get("reference"):
                # The ratio goal in FLOPs: matvae at goal x the reference's images/s would run its products
                # at this share of the ceiling. Above the products-alone share no step on this BLAS gets
                # there; above 100%, no step on this machine (the ceiling is its fastest product).
                cell["goal_needs_ceiling_fraction"] = (
                    cell["ratio_goal"] * cell["reference"]["images_per_s"] * cell["useful_flops_per_image"] / 1e9 / top)

        # 4. MRL vs the separate MMD-VAEs: 2 threads, batch 128, same images and epochs. Every model of
        # the comparison is trained once per round, the rounds one after the other, and each model's
        # median over the rounds is taken: a ratio of runs made minutes apart (the grid's cells) moved by
        # 20% with the machine's load; interleaved, a slow moment slows both sides.
        b, t = min(BATCHES), max(threads_list)
        rounds = 1 if quick else MRL_ROUNDS
        s = {"batch": b, "threads": t, "epochs": epochs, "images_per_epoch": steps * b, "rounds": rounds,
             "separate": [{"latent": m, "rounds": []} for m in NESTING], "mrl": {}, "ratio": {}, "errors": []}
        # (label, decoder, extra flags): every prefix per step, then S random prefixes per step.
        mrl_runs = [(dec, dec, []) for dec in ("tied", "separate")] + [
            (f"{dec}, {n} of {len(NESTING)} prefixes per step", dec, ["--prefix-sample", str(n)])
            for dec in ("tied", "separate") for n in PREFIX_SAMPLES]
        mrl_rounds = {label: [] for label, _, _ in mrl_runs}
        keys = ("train_seconds", "seconds", "images_per_s", "epochs", "wall_s")
        for rnd in range(rounds):
            for r in s["separate"]:
                m = r["latent"]
                log(f"round {rnd + 1}/{rounds}: separate mmd, latent {m}")
                try:
                    _, mv = matvae_train(tmp, data, "mmd", None, m, b, t, steps, epochs, f"sep-mmd-{m}-r{rnd}")
                    r["rounds"].append({k: mv[k] for k in keys})
                except StepFailed as e:
                    s["errors"].append(str(e))
                    failures.append(str(e))
            for label, dec, extra in mrl_runs:
                log(f"round {rnd + 1}/{rounds}: mrl-mmd {label}")
                try:
                    _, mv = matvae_train(tmp, data, "mrl-mmd", dec, LATENT, b, t, steps, epochs,
                                         f"mrl-{label.replace(', ', '-').replace(' ', '-')}-r{rnd}", extra)
                    mrl_rounds[label].append({k: mv[k] for k in keys})
                except StepFailed as e:
                    s["errors"].append(str(e))
                    failures.append(str(e))

        def median_of(rs):
            return {"train_seconds": statistics.median(x["train_seconds"] for x in rs),
                    "seconds": statistics.median(x["seconds"] for x in rs)} if rs else {}

        ok = all(len(r["rounds"]) == rounds for r in s["separate"])
        for r in s["separate"]:
            r.update(median_of(r["rounds"]))
        if ok:
            s["separate_seconds"] = sum(r["train_seconds"] for r in s["separate"])
            s["separate_last_epoch_seconds"] = sum(r["seconds"] for r in s["separate"])
        for label, rs in mrl_rounds.items():
            if len(rs) != rounds:
                continue
            s["mrl"][label] = {**median_of(rs), "rounds": rs}
            if ok:
                per_round = [rs[i]["train_seconds"] / sum(r["rounds"][i]["train_seconds"] for r in s["separate"])
                             for i in range(rounds)]
                s["ratio"][label] = {"total": s["mrl"][label]["train_seconds"] / s["separate_seconds"],
                                     "last_epoch": s["mrl"][label]["seconds"] / s["separate_last_epoch_seconds"],
                                     "per_round": per_round}
        res["mrl_vs_separate"] = s

        # 5. encode and eval on the mrl-mmd tied run
        inf = {"errors": []}
        mrl_dir = dirs.get(cell_key("mrl-mmd tied", b, t))
        if mrl_dir:
            n_split = {"test": idx_count(data, "t10k-images-idx3-ubyte"),
                       "train": idx_count(data, "train-images-idx3-ubyte")}
            for split in ("test", "train"):
                log(f"encode {split} split")
                try:
                    wall, _ = run([MATVAE, "encode", "--run", mrl_dir, "--data", data, "--dim", str(LATENT),
                                   "--split", split, "--out", os.path.join(tmp, f"codes-{split}.npy")])
                    inf[f"encode_{split}"] = {"split": split, "wall_s": wall, "images": n_split[split],
                                              "images_per_s": n_split[split] / wall}
                except StepFailed as e:
                    inf["errors"].append(str(e))
                    failures.append(str(e))
            if "encode_test" in inf and "encode_train" in inf:
                dt = inf["encode_train"]["wall_s"] - inf["encode_test"]["wall_s"]
                if dt > 0:
                    inf["encode_marginal_images_per_s"] = (n_split["train"] - n_split["test"]) / dt
            log(f"eval (probe + k-NN, {len(NESTING)} prefixes)")
            try:
                wall, _ = run([MATVAE, "eval", "--run", mrl_dir, "--threads", str(t)])
                inf["eval"] = {"wall_s": wall, "threads": t, "prefixes": ",".join(map(str, NESTING)),
                               "train_images": n_split["train"], "test_images": n_split["test"]}
            except StepFailed as e:
                inf["errors"].append(str(e))
                failures.append(str(e))
        else:
            inf["errors"].append("no mrl-mmd tied run to encode with")
        res["inference"] = inf

        # 6. the quick experiment
        if a.with_quick:
            q = {}
            try:
                q["wall_s"], q["load_start"] = quick_experiment(MATVAE, os.path.join(tmp, "quick"))
                if a.quick_baseline_binary:
                    # The binary from before the issue, on the same machine in the same run: the ratio is fair.
                    q["baseline_binary"] = a.quick_baseline_binary
                    q["baseline_version"] = run([a.quick_baseline_binary, "--version"])[1].strip()
                    q["baseline_s"], q["baseline_load_start"] = quick_experiment(
                        a.quick_baseline_binary, os.path.join(tmp, "quick-baseline"))
                    q["baseline_how"] = "measured in this run"
                    q["differences"] = compare_results(os.path.join(tmp, "quick-baseline", "results.json"),
                                                       os.path.join(tmp, "quick", "results.json"))
                elif a.quick_baseline:
                    q["baseline_s"] = a.quick_baseline
                    q["baseline_how"] = "given by --quick-baseline (another run, maybe another machine state)"
                if q.get("baseline_s"):
                    q["speedup"] = q["baseline_s"] / q["wall_s"]
            except (StepFailed, OSError, ValueError, KeyError) as e:
                q["error"] = str(e)
                failures.append(str(e))
            res["quick_experiment"] = q
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # targets
    T = res["targets"]
    work_ratio = macs_per_image("mrl-mmd", "tied") / sum(macs_per_image("mmd", None, latent=m) for m in NESTING)
    for cell in res["grid"]:
        if cell["ceiling_target"]:
            T.append({"what": f"{cell['label']}: % of the {cell['threads']}-thread ceiling, batch {cell['batch']}",
                      "measured": pct(cell.get("ceiling_fraction")),
                      "goal": f"≥ {TARGET_CEILING:.0%}", "pass": cell.get("ceiling_pass"),
                      "bound": (f"its layer products alone reach {pct(cell['products_ceiling_fraction'])}"
                                if cell.get("products_ceiling_fraction") is not None else "")})
    for label, model, _ in MODELS:
        cells = [c for c in res["grid"] if c["label"] == label and c.get("ratio") is not None]
        worst = min(cells, key=lambda c: c["ratio"]) if cells else None
        T.append({"what": f"{label}: matvae / reference, worst of batch x threads",
                  "measured": f"{worst['ratio']:.2f}x (b{worst['batch']} t{worst['threads']})" if worst else "–",
                  "goal": f"≥ {TARGET_RATIO[model]}x", "pass": None if not worst or len(cells) < len(BATCHES) * len(threads_list)
                  else worst["ratio"] >= TARGET_RATIO[model],
                  "bound": "; ".join(x for x in (
                      f"products alone allow {worst['ratio_bound']:.2f}x there"
                      if worst and worst.get("ratio_bound") is not None else "",
                      f"the goal needs {pct(worst['goal_needs_ceiling_fraction'])} of the ceiling there"
                      if worst and worst.get("goal_needs_ceiling_fraction") is not None else "") if x)})
    s = res["mrl_vs_separate"]
    top = {int(k): v for k, v in res["ceiling"].get("gflops", {}).items()}.get(s["threads"])
    for dec, r in s.get("ratio", {}).items():
        needs = ""
        if top and "prefixes per step" not in dec:
            # The goal in FLOPs: the MRL model trained in TARGET_MRL x the separate models' seconds runs its
            # products at this share of the ceiling; the separate models' own share beside it.
            images = s["epochs"] * s["images_per_epoch"]
            r["goal_needs_ceiling_fraction"] = (images * useful_flops_per_image("mrl-mmd", dec)
                                                / (TARGET_MRL * s["separate_seconds"]) / 1e9 / top)
            r["separate_ceiling_fraction"] = (images * sum(useful_flops_per_image("mmd", None, latent=m) for m in NESTING)
                                              / s["separate_seconds"] / 1e9 / top)
            needs = (f"; the goal needs the MRL step at {pct(r['goal_needs_ceiling_fraction'])} of the ceiling, the "
                     f"separate models ran at {pct(r['separate_ceiling_fraction'])}")
            same = [c for c in res["grid"] if c["label"] == f"mrl-mmd {dec}" and c["batch"] == s["batch"]
                    and c["threads"] == s["threads"] and c.get("products_ceiling_fraction") is not None]
            if same:
                needs += f"; its products alone reach {pct(same[0]['products_ceiling_fraction'])} (section 3)"
        T.append({"what": f"MRL ({dec}) / {len(NESTING)} separate MMD-VAEs, training time",
                  "measured": f"{r['total']:.3f}", "goal": f"≤ {TARGET_MRL}", "pass": r["total"] <= TARGET_MRL,
                  "bound": "" if "prefixes per step" in dec else
                  f"the work: {work_ratio:.3f} at equal speed per FLOP (section 4){needs}"})
    q = res.get("quick_experiment")
    T.append({"what": "experiment --profile quick, wall time",
              "measured": f"{q['wall_s']:.0f} s" if q and q.get("wall_s") else "not run",
              "goal": f"≤ {TARGET_QUICK_S} s",
              "pass": (q["wall_s"] <= TARGET_QUICK_S) if q and q.get("wall_s") else None})

    # notes
    meta = res["meta"]
    meta["loadavg_end"] = loadavg()
    meta["seconds"] = time.perf_counter() - started
    libs = meta.get("libraries", {})
    N = res["notes"]
    built = re.search(r"commit ([0-9a-f]{7,})", meta.get("matvae_version", ""))
    head = git("rev-parse", "HEAD")
    meta["matvae_commit"] = built.group(1) if built else None
    if built and head and not head.startswith(built.group(1)):
        N.append(f"warning: build/matvae was built from commit {built.group(1)[:7]}, but HEAD is {meta['commit']}: "
                 "run scripts/build for figures of the current code.")
    if libs.get("same"):
        N.append("LibTorch C++ (matvae) and Debian's python3-torch load the same libtorch_cpu and BLAS "
                 f"({', '.join(os.path.basename(p) for p in libs['matvae'])}), so the ceiling measured through "
                 "Python torch is LibTorch's, and the matvae / reference ratio compares code, not libraries.")
    else:
        N.append("warning: matvae and python3-torch do not load the same torch/BLAS libraries "
                 f"(matvae: {libs.get('matvae')}; python: {libs.get('python_torch')}): the ceiling and ratios are "
                 "not like for like.")
    N.append("The reference runs with matvae's glibc heap thresholds ("
             + ", ".join(f"{k}={v}" for k, v in REFERENCE_HEAP_ENV.items())
             + "): freed temporaries stay in the heap in both, so the ratio compares code, not the allocator's "
             "settings. (Result files before session 11 ran the reference without them; its MMD steps then "
             "page-faulted and varied 1.5-5x from run to run, which inflated the mmd and mrl-mmd ratios.)")
    N.append(f"Data: {res['settings']['data']}, held in memory; every run uses the first {steps} x batch training "
             "images; seed 0. matvae's per-epoch test evaluation is not in its figures.")
    N.append("matvae's 2-thread cells train with parallel = batch, the default since session 14: two one-thread "
             "ranks in one process, each with half of every batch, sharing rank 0's weights; their gradients are "
             "summed in shared memory and one Adam step is split between them (src/dist/thread_team.cpp). Result files before session 14 measured parallel = ops "
             "(one model, each operation split over both threads). The products-alone figures time the products "
             "of one model on the cell's threads (the ops layout) and, since session 20, also split as the ranks "
             "split them (the batch layout); the bound is the faster. Before session 20 only the ops layout was "
             "timed, which for batch-mode cells was a reference, not a bound.")
    N.append("Useful FLOPs count the layer products only (MMD kernels, losses and Adam are free): forward, weight "
             "gradient and input gradient of every layer but the first, whose input gradient no step needs. "
             "(Until session 5 the count was 3 x forward, which credited that product too: the % ceiling figures "
             "of earlier result files are 14% higher for vae and mmd and 4% higher for mrl-mmd than this count gives.)")
    busy = meta["loadavg_start"] is not None and meta["loadavg_start"] > 0.5
    if busy or (meta["loadavg_end"] is not None and meta["loadavg_end"] > max(threads_list) + 0.5):
        N.append(f"warning: the machine was busy (load {meta['loadavg_start']} at start, {meta['loadavg_end']} at "
                 "end): other work shares the cores, and 2-thread figures in particular suffer (a descheduled "
                 "OpenMP thread stalls every parallel region). Rerun on an idle machine for figures to quote.")
    over = [f"{c['label']} b{c['batch']} t{c['threads']}" for c in res["grid"]
            if (c.get("products_ceiling_fraction") or 0) > 1.0]
    if over and not quick:
        N.append(f"warning: the layer products alone ran faster than the measured ceiling ({', '.join(over)}): the "
                 "ceiling's windows all read low (other load while they ran), so every % ceiling figure "
                 "here is too high. Rerun for figures to quote.")
    if quick:
        N.append(f"--quick-steps: {steps} steps per measurement, 1 thread only (sections 2-5), a "
                 f"{ceiling_size}-matrix ceiling and a {QUICK_SUBSET[0]}/{QUICK_SUBSET[1]}-image data subset: "
                 "a smoke test of the driver, not a measurement.")
    N.append(f"Took {meta['seconds']:.0f} s.")

    os.makedirs(RESULTS, exist_ok=True)
    base = os.path.join(RESULTS, name)
    text = render(res)
    for path, body in ((base + ".json", json.dumps(res, indent=1) + "\n"), (base + ".md", text)):
        with open(path + ".tmp", "w") as f:
            f.write(body)
        os.replace(path + ".tmp", path)
    print(text)
    log(f"written: {os.path.relpath(base, ROOT)}.json and .md")
    if failures:
        log(f"{len(failures)} measurement(s) failed; first: {failures[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
