#!/usr/bin/python3
"""The plain PyTorch reference of the benchmark: matvae's three models, written the way a Python
user would write them, and a training-throughput measurement.

Same architecture, loss, optimiser, batch, threads and in-memory data as `matvae train`:
  encoder  Linear(784,512) ReLU Linear(512,256) ReLU; heads mu, logvar = Linear(256,D)
  decoder  Linear(D,256) ReLU Linear(256,512) ReLU Linear(512,784) -> logits
  recon    Bernoulli cross-entropy with logits, summed over pixels, mean over the batch
  vae      recon + KL(q || N(0, I))
  mmd      recon + 100 * MMD^2(z, prior), biased, gaussian kernel exp(-|a-b|^2 / (2 m))
  mrl-mmd  sum over m in the nesting of [recon(x, dec_m(z[:, :m])) + 100 * MMD^2(z[:, :m], prior[:, :m])]
           (tied: one Linear(D,256) whose first m input columns serve prefix m; separate: a Linear(m,256)
           per prefix; the rest of the decoder shared), one decoder pass per prefix: the naive way.
Adam, lr 1e-3. The training images sit in memory as one float32 tensor; each step gathers a batch
through a per-epoch random permutation.

  models.py --model vae|mmd|mrl-mmd [--decoder tied|separate] --batch B --threads T --steps N --data DIR

prints one JSON line: {"images_per_s": ..., "seconds": ..., "steps": ..., ...}, timed over N steps
after --warmup steps.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- data

def _open_idx(directory, name):
    path = os.path.join(directory, name)
    if os.path.exists(path):
        return open(path, "rb")
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    raise FileNotFoundError(f"{path}: no such file (nor {path}.gz)")


def load_images(directory, split="train", limit=0):
    """[N, 784] float32 in [0, 1] from an IDX folder (raw or .gz files, big-endian headers)."""
    with _open_idx(directory, f"{split}-images-idx3-ubyte") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 0x803:
            raise ValueError(f"{directory}: {split} images have magic {magic:#x}, expected 0x803")
        if limit and limit < n:
            n = limit
        raw = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return torch.from_numpy(raw.reshape(n, rows * cols).astype(np.float32) / 255.0)


# ---------------------------------------------------------------- models

class Vae(nn.Module):
    def __init__(self, pixels=784, hidden=(512, 256), latent=64, nesting=(64,), decoder="tied"):
        super().__init__()
        self.nesting = list(nesting)
        self.decoder_form = decoder
        layers, width = [], pixels
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(*layers)
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)
        if decoder == "tied":
            self.decoder_first = nn.Linear(latent, hidden[-1])
        else:
            self.decoder_first = nn.ModuleList([nn.Linear(m, hidden[-1]) for m in self.nesting])
        rest, width = [], hidden[-1]
        for h in reversed(hidden[:-1]):
            rest += [nn.ReLU(), nn.Linear(width, h)]
            width = h
        rest += [nn.ReLU(), nn.Linear(width, pixels)]
        self.decoder_rest = nn.Sequential(*rest)

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z_prefix, k):
        """Logits from the first m = nesting[k] code coordinates."""
        m = z_prefix.shape[1]
        if self.decoder_form == "tied":
            h = F.linear(z_prefix, self.decoder_first.weight[:, :m], self.decoder_first.bias)
        else:
            h = self.decoder_first[k](z_prefix)
        return self.decoder_rest(h)


def recon_loss(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()


def kl_loss(mu, logvar):
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1).mean()


def gaussian_kernel(a, b):
    m = a.shape[1]
    d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(2)
    return torch.exp(-d2 / (2.0 * m))


def mmd_loss(z, prior):
    """Biased MMD^2 estimate (all pairs, i = j included)."""
    return gaussian_kernel(z, z).mean() + gaussian_kernel(prior, prior).mean() - 2.0 * gaussian_kernel(z, prior).mean()


def loss_fn(model, x, kind, lam=100.0):
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    if kind == "vae":
        return recon_loss(model.decode(z, 0), x) + kl_loss(mu, logvar)
    prior = torch.randn_like(z)
    total = 0.0
    for k, m in enumerate(model.nesting):
        total = total + recon_loss(model.decode(z[:, :m], k), x) + lam * mmd_loss(z[:, :m], prior[:, :m])
    return total


# ---------------------------------------------------------------- measurement

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["vae", "mmd", "mrl-mmd"])
    ap.add_argument("--decoder", default="tied", choices=["tied", "separate"])
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--nesting", default="", help="comma list (mrl-mmd; default 2,4,...,latent)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=150, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training images (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(a.seed)

    if a.model == "mrl-mmd":
        nesting = [int(s) for s in a.nesting.split(",")] if a.nesting else \
            [2 ** i for i in range(1, int(math.log2(a.latent)))] + [a.latent]
        if nesting[-1] != a.latent:
            ap.error("the last nesting value must equal --latent")
    else:
        nesting = [a.latent]

    data = load_images(a.data, "train", a.limit)
    n = data.shape[0]
    if n < a.batch:
        ap.error(f"batch {a.batch} is larger than the {n} training images")
    model = Vae(pixels=data.shape[1], latent=a.latent, nesting=nesting, decoder=a.decoder)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    per_epoch = n // a.batch
    state = {"perm": torch.randperm(n), "pos": 0}

    def next_batch():
        if state["pos"] >= per_epoch:
            state["perm"], state["pos"] = torch.randperm(n), 0
        idx = state["perm"][state["pos"] * a.batch:(state["pos"] + 1) * a.batch]
        state["pos"] += 1
        return data[idx]

    def step():
        x = next_batch()
        opt.zero_grad()
        loss = loss_fn(model, x, a.model)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"models.py: loss became {value}")
        return value

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    loss = float("nan")
    for _ in range(a.steps):
        loss = step()
    seconds = time.perf_counter() - start

    print(json.dumps({
        "images_per_s": a.steps * a.batch / seconds,
        "seconds": seconds,
        "steps": a.steps,
        "warmup_steps": a.warmup,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "model": a.model,
        "decoder": a.decoder if a.model == "mrl-mmd" else None,
        "nesting": nesting,
        "train_images": n,
        "final_loss": loss,
        "torch": torch.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
