"""Trains the PyTorch peer of models/infogan_mnist.mig on MNIST as `migc train` trains the
model, evaluating it every E steps as `migc eval` does; bench/quality.sh runs it.

  /usr/bin/python3 bench/peer/train.py --data-dir DIR [--model FILE] [-D NAME=VALUE]...
        [--seed S] [--steps N] [--eval-every E] [--batch B] [--threads T] [--figure PNG]

Training: the MNIST train images (DIR/mnist/train-images-idx3-ubyte[.gz]) scaled to
[0, 1], read in a fresh random order every epoch (a batch that crosses an epoch's end
continues in the next epoch's order, as migc's data set reader does); latents z ~
U(-1, 1)^62, c ~ Cat(10), s ~ U(-1, 1)^2 drawn for every step; each step is the
peer's step() (bench/peer/models.py): disc, then gen. The constants, learning rates
and MI weights are the model file's, with the -D overrides (models.recipe).

Evaluation (every E steps and after the last), with batchnorm on its running
statistics as migc's generate and encode use it (nn.Module.eval()):
  matched accuracy  Q's most likely code value for each of the 10,000 test images,
                    code values matched one-to-one to labels to maximise the hits;
  mi_c              ln 10 minus Q's mean cross-entropy for the code G was given, on 20
                    generated batches of B (the same latents at every evaluation).
One JSON line per evaluation: step, train_s (wall seconds of training steps so far,
evaluations excluded), eval_s (this evaluation's wall seconds), accuracy, mi_c,
mapping (code value -> label) and the last step's losses. Then, with --figure, the
latent traversal figure `migc sample` draws: one row per value of c, columns sweeping
s[0] from -2 to 2, the other latents fixed (s[1] = 0, z one draw).
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def read_idx(path):
    """An IDX file (plain or .gz, whichever exists) as a uint8 numpy array."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit("train.py: %s: not an IDX file of unsigned bytes" % path)
    dims = struct.unpack(">%dI" % rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def mnist(data_dir, part):
    """Images [n, 1, 28, 28] scaled to [0, 1] and labels [n] of DIR/mnist's part
    ('train' or 't10k')."""
    d = os.path.join(data_dir, "mnist")
    images = read_idx(os.path.join(d, part + "-images-idx3-ubyte"))
    labels = read_idx(os.path.join(d, part + "-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


class Batches:
    """Batch `step` of a run: positions step*B .. step*B+B-1 of an endless sequence
    that runs through epoch e's permutation of the images, e = position // n."""

    def __init__(self, images, batch, seed):
        self.images, self.batch, self.seed = images, batch, seed
        self.perms = {}

    def perm(self, epoch):
        if epoch not in self.perms:
            self.perms = {e: p for e, p in self.perms.items() if e >= epoch - 1}
            g = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
            self.perms[epoch] = torch.randperm(len(self.images), generator=g)
        return self.perms[epoch]

    def __call__(self, step):
        n = len(self.images)
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        epoch = pos // n
        index = torch.empty_like(pos)
        for e in epoch.unique().tolist():  # two epochs when the batch crosses an end
            at = epoch == e
            index[at] = self.perm(e)[pos[at] % n]
        return self.images[index]


def matched_accuracy(pred, labels, k):
    """The accuracy of pred (code values) after the one-to-one mapping of code values to
    labels with the most hits (Hungarian algorithm; scipy's where installed, else an
    exact search over subsets of labels, fine for K up to about 16). Returns the
    accuracy and the mapping, code value -> label."""
    kk = max(k, int(labels.max()) + 1)
    hits = np.zeros((kk, kk), np.int64)
    np.add.at(hits, (pred, labels), 1)
    try:
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment(-hits)
        mapping = dict(zip(rows.tolist(), cols.tolist()))
    except ImportError:
        if kk > 20:
            sys.exit("train.py: %d code values need scipy (python3-scipy)" % kk)
        # best[mask]: most hits with code values 0..popcount(mask)-1 mapped onto mask's
        # labels; choice remembers the label the last of them took.
        best = np.full(1 << kk, -1, np.int64)
        choice = np.zeros(1 << kk, np.int64)
        best[0] = 0
        for mask in range(1, 1 << kk):
            code = bin(mask).count("1") - 1
            for label in range(kk):
                if mask >> label & 1 and best[mask ^ 1 << label] >= 0:
                    v = best[mask ^ 1 << label] + hits[code, label]
                    if v > best[mask]:
                        best[mask], choice[mask] = v, label
        mapping, mask = {}, (1 << kk) - 1
        for code in range(kk - 1, -1, -1):
            mapping[code] = int(choice[mask])
            mask ^= 1 << mapping[code]
    correct = sum(hits[c, mapping[c]] for c in range(kk))
    return correct / len(labels), [mapping[c] for c in range(k)]


def evaluate(peer, test_x, test_y, batch, draws=20):
    """(matched accuracy, mapping, mi_c) with batchnorm on its running statistics."""
    nets = list(peer.nets.values())
    for net in nets:
        net.eval()
    with torch.no_grad():
        pred = torch.cat([peer.encode(test_x[i:i + 1000])[0].argmax(1)
                          for i in range(0, len(test_x), 1000)])
        acc, mapping = matched_accuracy(pred.numpy(), test_y.numpy(), 10)
        g = torch.Generator().manual_seed(1)  # the same draws at every evaluation
        ce = 0.0
        for _ in range(draws):
            z, c, s = peer.latents(batch, g)
            logits = peer.encode(peer.generator(z, c, s))[0]
            ce += F.cross_entropy(logits, c, reduction="sum").item()
        mi_c = math.log(10) - ce / (draws * batch)
    for net in nets:
        net.train()
    return acc, mapping, mi_c


def png_gray(path, pixels):
    """Writes a uint8 [H, W] array as an 8-bit greyscale PNG."""
    h, w = pixels.shape
    raw = b"".join(b"\0" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def figure(peer, path, seed=1, cols=10, pad=2):
    """migc sample's figure: row r has c = r, column j s[0] = -2 + 4j/(cols-1), s[1] = 0
    and the same z in every cell; cells of 28x28 on a grey (128) grid with pad pixels
    between them, values in [0, 1] mapped to 0..255 (rounded, clamped)."""
    g = torch.Generator().manual_seed(seed)
    z0, _, _ = peer.latents(1, g)
    rows = 10
    n = rows * cols
    z = z0.expand(n, -1)
    c = torch.arange(n) // cols
    s = torch.zeros(n, 2)
    s[:, 0] = -2.0 + 4.0 * (torch.arange(n) % cols).float() / (cols - 1)
    for net in peer.nets.values():
        net.eval()
    with torch.no_grad():
        images = peer.generator(z, c, s)[:, 0].numpy()
    for net in peer.nets.values():
        net.train()
    h, w = images.shape[1:]
    grid = np.full((pad + rows * (h + pad), pad + cols * (w + pad)), 128, np.uint8)
    cells = np.clip(np.floor(images * 255.0 + 0.5), 0, 255).astype(np.uint8)
    for i in range(n):
        y0, x0 = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = cells[i]
    png_gray(path, grid)


def parse_defines(pairs):
    out = {}
    for p in pairs:
        name, eq, value = p.partition("=")
        if not eq or not name:
            sys.exit("train.py: -D %s: expected NAME=VALUE" % p)
        out[name] = value
    return out


def main():
    ap = argparse.ArgumentParser(prog="bench/peer/train.py")
    ap.add_argument("--data-dir", required=True, help="holds mnist/ with the IDX files")
    ap.add_argument("--model", default=models.mig("infogan_mnist"),
                    help="the model file whose constants and steps the peer takes")
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--figure", help="write the latent traversal figure here at the end")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        torch.manual_seed(a.seed)
        peer = models.infogan_mnist(parse_defines(a.defines), a.model)
    except models.RecipeError as e:
        sys.exit("train.py: %s" % e)
    train_x, _ = mnist(a.data_dir, "train")
    test_x, test_y = mnist(a.data_dir, "t10k")
    batches = Batches(train_x, a.batch, a.seed)
    # the parameters come from torch's global generator (seeded above), the data order
    # from Batches' and the latents from their own, so none shifts the others' draws
    latents = torch.Generator().manual_seed(a.seed + 7777)
    train_s, out = 0.0, None
    for step in range(a.steps):
        t0 = time.perf_counter()
        out = peer.step((batches(step), *peer.latents(a.batch, latents)))
        train_s += time.perf_counter() - t0
        done = step + 1
        if done % a.eval_every == 0 or done == a.steps:
            t0 = time.perf_counter()
            acc, mapping, mi_c = evaluate(peer, test_x, test_y, a.batch)
            eval_s = time.perf_counter() - t0
            losses = {k: v.item() for k, v in out.items()}
            if not all(math.isfinite(v) for v in losses.values()):
                sys.exit("train.py: step %d: a loss is not finite: %s" % (done, losses))
            print(json.dumps({"step": done, "train_s": round(train_s, 3),
                              "eval_s": round(eval_s, 3), "accuracy": acc, "mi_c": mi_c,
                              "mapping": mapping, "losses": losses}), flush=True)
    if a.figure:
        figure(peer, a.figure)


if __name__ == "__main__":
    main()
