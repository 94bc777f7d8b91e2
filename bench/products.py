#!/usr/bin/python3
"""The layer products alone: how fast one training step's matrix products run at the model's own
shapes, with nothing else (no bias, activation, loss, MMD, optimiser or allocation).

The big-matrix ceiling (ceiling.py) is what BLAS reaches on 2048-wide squares. A VAE step is a chain of
thin products (batch x 784 x 512 down to batch x 2 x 256), and BLAS runs those slower per FLOP, most of
all on 2 threads. This measures that: one step's products, in the order a step runs them, as a loop of
torch.mm into preallocated outputs on T threads. Its time per step is a lower bound on any training
step that does these products with this BLAS, so it bounds both the % of the big ceiling a model can
reach and how much faster than the plain PyTorch reference any rewrite of the rest can be.

  products.py --cells vae:-:128:1,mrl-mmd:tied:256:2,... [--seconds 0.5] [--layout matvae|reference] [--ranks]

prints one JSON line: {"cells": [{"model", "decoder", "batch", "threads", "layout", "seconds_per_step",
"images_per_s", "gflops", "products"}, ...]}.

Layouts. matvae (models/vae.cpp) decodes every prefix as one product on the stacked [K*B, 256]
hidden codes, and a tied first layer as one product per block of new coordinates; the reference
(reference/models.py) runs one decoder pass per prefix on [B, m].

--ranks: as matvae trains on T threads by default (parallel = batch), T threads at once, each doing
the products of its B/T rows of the batch on one thread; a step ends when the slowest has done its
share. Without it, one set of products on T threads (parallel = ops, and the reference).
"""
import argparse
import json
import sys
import threading
import time

import torch

PIXELS, HIDDEN, LATENT = 784, (512, 256), 64
NESTING = (2, 4, 8, 16, 32, 64)


def linear(rows, fan_in, fan_out, input_grad=True):
    """One Linear layer's products in a training step: forward, weight gradient, input gradient.

    Each is (out_rows, inner, out_cols, how): y[B,out] = x[B,in] W[out,in]^T; dW[out,in] = dY^T x;
    dX[B,in] = dY W. The layouts are the ones autograd uses, so BLAS sees the same transposes."""
    ps = [(rows, fan_in, fan_out, "x W^T"), (fan_out, rows, fan_in, "dY^T x")]
    if input_grad:
        ps.append((rows, fan_out, fan_in, "dY W"))
    return ps


def step_products(model, decoder, batch, layout, latent=LATENT, nesting=NESTING):
    h1, h2 = HIDDEN
    B = batch
    ps = linear(B, PIXELS, h1, input_grad=False)           # the data needs no gradient
    ps += linear(B, h1, h2)
    ps += linear(B, h2, latent) + linear(B, h2, latent)     # mu and logvar heads
    if model != "mrl-mmd":
        ps += linear(B, latent, h2) + linear(B, h2, h1) + linear(B, h1, PIXELS)
        return ps
    K = len(nesting)
    if layout == "matvae":
        start = 0
        for m in nesting:
            if decoder == "tied":                           # one product per block of new coordinates
                ps += linear(B, m - start, h2)
                start = m
            else:                                           # one first layer per prefix
                ps += linear(B, m, h2)
        ps += linear(K * B, h2, h1) + linear(K * B, h1, PIXELS)
    else:
        for m in nesting:
            ps += linear(B, m, h2) + linear(B, h2, h1) + linear(B, h1, PIXELS)
    return ps


def operands(products):
    """Tensors for each product, laid out as autograd has them (transposed views where it uses them)."""
    ops = []
    for rows, inner, cols, how in products:
        if how == "x W^T":
            a, b = torch.rand(rows, inner), torch.rand(cols, inner).t()
        elif how == "dY^T x":
            a, b = torch.rand(inner, rows).t(), torch.rand(inner, cols)
        else:
            a, b = torch.rand(rows, inner), torch.rand(inner, cols)
        ops.append((a, b, torch.empty(rows, cols)))
    return ops


WARM_UP_STEPS = 3      # before timing: the thread pool, page faults
MIN_STEPS = 5          # timed steps at the least, however long they take


def step(ops):
    """One step's products, each into its preallocated output."""
    for a, b, c in ops:
        torch.mm(a, b, out=c)


def measure(products, threads, seconds):
    torch.set_num_threads(threads)
    ops = operands(products)
    with torch.no_grad():
        for _ in range(WARM_UP_STEPS):
            step(ops)
        steps, start = 0, time.perf_counter()
        while True:
            step(ops)
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and steps >= MIN_STEPS:
                break
    return elapsed / steps


def measure_ranks(products_of_rank, ranks, seconds):
    """Each of `ranks` threads runs its own products on one intra-op thread (torch.mm releases the GIL),
    step after step, meeting at a barrier after each: seconds per step of the slowest."""
    barrier = threading.Barrier(ranks)
    stop = threading.Event()
    steps = [0]
    elapsed = [0.0]
    errors = []

    def rank(r):
        try:
            torch.set_num_threads(1)                    # this thread's OpenMP setting, which BLAS follows
            ops = operands(products_of_rank)
            with torch.no_grad():
                for _ in range(WARM_UP_STEPS):
                    step(ops)
                barrier.wait()
                start = time.perf_counter()
                while True:
                    step(ops)
                    barrier.wait()                       # the step ends with its slowest rank
                    if r == 0:
                        steps[0] += 1
                        elapsed[0] = time.perf_counter() - start
                        if elapsed[0] >= seconds and steps[0] >= MIN_STEPS:
                            stop.set()
                    barrier.wait()                       # every rank sees rank 0's decision
                    if stop.is_set():
                        break
        except Exception as e:                           # noqa: BLE001 - reported, and the others released
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return elapsed[0] / steps[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", required=True,
                    help="comma list of model:decoder:batch:threads (decoder '-' for vae and mmd)")
    ap.add_argument("--layout", default="matvae", choices=["matvae", "reference"])
    ap.add_argument("--seconds", type=float, default=0.5, help="time per cell")
    ap.add_argument("--ranks", action="store_true",
                    help="T threads at once, each doing its B/T rows' products on one thread (matvae's parallel = batch)")
    a = ap.parse_args()
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    out = {"layout": a.layout, "seconds": a.seconds, "torch": torch.__version__, "cells": []}
    for spec in a.cells.split(","):
        try:
            model, decoder, batch, threads = spec.split(":")
            batch, threads = int(batch), int(threads)
        except ValueError:
            ap.error(f"--cells: {spec!r} is not model:decoder:batch:threads")
        if model not in ("vae", "mmd", "mrl-mmd") or batch < 1 or threads < 1:
            ap.error(f"--cells: {spec!r}: unknown model or a batch/threads below 1")
        if a.ranks and threads > 1:
            if batch % threads:
                ap.error(f"--cells: {spec!r}: --ranks needs a batch that the threads divide")
            share = step_products(model, decoder, batch // threads, a.layout)
            sec = measure_ranks(share, threads, a.seconds)
            products = share * threads
        else:
            products = step_products(model, decoder, batch, a.layout)
            sec = measure(products, threads, a.seconds)
        macs = sum(r * i * c for r, i, c, _ in products)
        out["cells"].append({"model": model, "decoder": None if decoder == "-" else decoder, "batch": batch,
                             "threads": threads, "layout": a.layout, "ranks": threads if a.ranks else 1,
                             "seconds_per_step": sec,
                             "images_per_s": batch / sec, "gflops": 2.0 * macs / sec / 1e9,
                             "macs_per_step": macs, "products": len(products)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
