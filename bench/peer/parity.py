"""Checks that the PyTorch peer of a model (the InfoGAN models, and wgan_gp_fashion and
infogan_r1_mnist, whose objectives hold gradients: torch.autograd.grad with
create_graph=True) computes what migc computes: the same first steps from the same
parameters on the same batches, and, for InfoGAN, the same evaluation of a trained
checkpoint. bench/quality.sh runs it before training.

  /usr/bin/python3 bench/peer/parity.py [--model FILE] [-D NAME=VALUE]... [--batch B]
        [--data-dir DIR] [--migc build/migc] [--steps N] [--golden DIR]
        [--checkpoint CKPT [--figure PNG]]

Steps: `migc compile`s the model (with the -D settings and batch) into a shared object
(docs/abi.md) and creates it with seed 1. Before each of N steps (default 2) it copies
migc's whole state into the peer by name: parameters and batchnorm statistics
(NET.LAYER.ROLE, layers numbered per kind in the order the peer's modules are written,
as docs/language.md 6.3 numbers them) and each step's Adam moments and counter. Both
sides then take the step on the same real images (MNIST's first train images when
--data-dir has them, else uniform in [0, 1]) and the same z, c, s. It compares the
step's outputs (mi_c, mi_s, disc.loss, gen.loss), the batchnorm running statistics
after it (which say that both sides ran the layers the same number of times, in the
same order) and the parameters after it (which say that both updated the same nets
with the same lr and beta1), and exits 1 on a difference larger than float rounding
explains (see the tolerances below).

--golden DIR: also saves the peer's N steps in DIR (their inputs as .npy, their outputs
and samples of the parameters after them in peer.json), so that tests/cli/peer_golden.sh
can compare migc with PyTorch where PyTorch is not installed.

--checkpoint CKPT: instead, loads a `migc train` checkpoint into the peer and prints
the peer's evaluation of it (bench/peer/train.py's evaluate: matched accuracy on the
test images and mi_c) for comparison with `migc eval CKPT`; with --figure PNG, also
the peer's latent traversal figure of it, for comparison with `migc sample CKPT` (the
same cells, but z is another draw).
"""
import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_RANK = 8
LOSS_RTOL = 1e-4     # a step's outputs: both sides sum in different orders, no more
STATS_RTOL = 1e-4    # running statistics, relative to the largest of the tensor
# Parameters after a step: Adam's first steps move every element by about lr whatever
# its gradient's size, so an element whose gradient is near zero may step either way
# on the two sides. At most this share of a tensor's elements may end more than 1% of
# lr apart (measured: 0.3% at step 1, 0.05% at step 2); a wrong lr or beta1 moves
# nearly all of them.
PARAM_SHARE = 0.01
# ... or this many elements, whichever allows more: a 64-element batchnorm weight has
# one or two such elements, which are 1.6% or 3.1% of it.
PARAM_FEW = 2
# A parameter whose gradient (migc's, from Adam's second moment) is below this
# everywhere gets nothing but rounding noise: the bias of a layer followed by
# batchnorm, which subtracts it again (migc's are about 1e-9, real ones 1e-3 or more).
NOISE_GRADIENT = 1e-6


class VarInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_RANK), ("numel", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("data", ctypes.POINTER(ctypes.c_float))]


class InputInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int), ("dist", ctypes.c_int),
                ("a", ctypes.c_double), ("b", ctypes.c_double), ("pad", ctypes.c_int64),
                ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_RANK), ("numel", ctypes.c_int64)]


class FunctionInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("ninputs", ctypes.c_int),
                ("inputs", ctypes.POINTER(ctypes.c_int)), ("noutputs", ctypes.c_int),
                ("scratch_bytes", ctypes.c_size_t)]


class OutputInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_RANK), ("numel", ctypes.c_int64)]


KIND_PARAM, KIND_BN_MEAN, KIND_BN_VAR = 0, 1, 2
LAYER_KINDS = [(nn.Linear, "dense"), (nn.ConvTranspose2d, "deconv"), (nn.Conv2d, "conv"),
               ((nn.BatchNorm1d, nn.BatchNorm2d), "bn")]


def peer_tensors(peer):
    """{migc's variable name: the peer's tensor}: parameters and batchnorm statistics,
    from the peer's own table where it has one (net instances), else by numbering its
    modules as migc numbers layers."""
    if hasattr(peer, "tensors"):
        return peer.tensors()
    out = {}
    for net_name, net in peer.nets.items():
        count = {}
        for module in net.modules():
            kind = next((k for t, k in LAYER_KINDS if isinstance(module, t)), None)
            if kind is None:
                continue
            layer = "%s.%s%d" % (net_name, kind, count.get(kind, 0))
            count[kind] = count.get(kind, 0) + 1
            for role in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(module, role, None)
                if t is not None:
                    out[layer + "." + role] = t
    return out


def load_into_peer(peer, state):
    """Copies {name: numpy array} (every parameter and statistic the peer has) into it."""
    tensors = peer_tensors(peer)
    missing = sorted(set(tensors) - set(state))
    if missing:
        sys.exit("parity: migc has no %s (the peer's layers differ from the model's)"
                 % ", ".join(missing[:5]))
    with torch.no_grad():
        for name, t in tensors.items():
            v = torch.from_numpy(np.array(state[name], np.float32))
            if tuple(v.shape) != tuple(t.shape):
                sys.exit("parity: %s is %s in migc, %s in the peer" % (
                    name, list(v.shape), list(t.shape)))
            t.copy_(v)
    return tensors


def load_optimizers(peer, tensors, state):
    """Copies migc's Adam state into the peer's optimizers: PARAM@STEP.m and .v (each
    step keeps its own moments, as each of the peer's steps has its own torch Adam) and
    the step's counter STEP.t."""
    names = {id(t): n for n, t in tensors.items()}
    for step, (params, opt) in peer.steps.items():
        t = float(np.asarray(state[step + ".t"]).reshape(-1)[0])
        for param in params:
            name = names[id(param)] + "@" + step
            opt.state[param] = {
                "step": torch.tensor(t),
                "exp_avg": torch.from_numpy(np.array(state[name + ".m"], np.float32)),
                "exp_avg_sq": torch.from_numpy(np.array(state[name + ".v"], np.float32))}


class Library:
    """A model compiled by `migc compile`, through its C ABI."""

    def __init__(self, path, seed):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.migc_create.argtypes = [ctypes.c_uint64, ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.c_char_p, ctypes.c_size_t]
        for name, args in [("migc_var", [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(VarInfo)]),
                           ("migc_input", [ctypes.c_void_p, ctypes.c_int,
                                           ctypes.POINTER(InputInfo)]),
                           ("migc_function", [ctypes.c_void_p, ctypes.c_int,
                                              ctypes.POINTER(FunctionInfo)]),
                           ("migc_function_output", [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                                     ctypes.POINTER(OutputInfo)]),
                           ("migc_train_step", [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                                ctypes.c_size_t,
                                                ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                                ctypes.POINTER(ctypes.c_float), ctypes.c_int])]:
            getattr(L, name).argtypes = args
        L.migc_var_count.argtypes = [ctypes.c_void_p]
        L.migc_function_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.migc_last_error.argtypes = [ctypes.c_void_p]
        L.migc_last_error.restype = ctypes.c_char_p
        self.m = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        if L.migc_create(seed, ctypes.byref(self.m), err, len(err)) != 0:
            sys.exit("parity: migc_create: %s" % err.value.decode())

    def check(self, status, what):
        if status != 0:
            sys.exit("parity: %s: %s" % (what, self.lib.migc_last_error(self.m).decode()))

    def variables(self):
        """{name: (kind, numpy view of the live values)}."""
        out = {}
        for i in range(self.lib.migc_var_count(self.m)):
            v = VarInfo()
            self.check(self.lib.migc_var(self.m, i, ctypes.byref(v)), "migc_var")
            a = np.ctypeslib.as_array(v.data, shape=(v.numel,)).reshape(tuple(v.shape[:v.rank]))
            out[v.name.decode()] = (v.kind, a)
        return out

    def train_step(self, batch):
        """One step on batch {input name: tensor}; returns {output name: value}."""
        f = self.lib.migc_function_find(self.m, b"train_step")
        info = FunctionInfo()
        self.check(self.lib.migc_function(self.m, f, ctypes.byref(info)), "migc_function")
        keep, ptrs, data = [], (ctypes.c_void_p * info.ninputs)(), None
        for j in range(info.ninputs):
            inp = InputInfo()
            self.check(self.lib.migc_input(self.m, info.inputs[j], ctypes.byref(inp)), "migc_input")
            name = inp.name.decode()
            if name not in batch:
                sys.exit("parity: train_step takes %s, which the peer does not draw" % name)
            a = np.ascontiguousarray(batch[name].numpy().astype(
                np.int32 if inp.dtype == 1 else np.float32))
            if a.size != inp.numel:
                sys.exit("parity: input %s: %d values, migc wants %d" % (name, a.size, inp.numel))
            keep.append(a)
            ptrs[j] = a.ctypes.data
            if inp.kind == 0:
                data = a
        metrics = (ctypes.c_float * info.noutputs)()
        self.check(self.lib.migc_train_step(
            self.m, data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), data.size, ptrs,
            info.ninputs, metrics, info.noutputs), "migc_train_step")
        names = []
        for k in range(info.noutputs):
            o = OutputInfo()
            self.check(self.lib.migc_function_output(self.m, f, k, ctypes.byref(o)),
                       "migc_function_output")
            names.append(o.name.decode())
        return dict(zip(names, list(metrics)))


def compile_model(a, tmp):
    so = os.path.join(tmp, "libparity.so")
    cmd = [a.migc, "compile", a.model, "--batch", str(a.batch), "-o", so]
    for d in a.defines:
        cmd += ["-D", d]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("parity: %s failed:\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    return so


def real_images(a, peer, count):
    """The first train images of the peer's data set in its range (padded with its low
    end to the peer's image size, as an input's `pad` does), or uniform noise (with
    --uniform, or without the data set)."""
    lo, hi = peer.range
    x, what = data_images(a, peer, count)
    pad = (getattr(peer, "image", (1, 28, 28))[-1] - x.shape[-1]) // 2
    return torch.nn.functional.pad(x, (pad,) * 4, value=lo) if pad > 0 else x, what


def data_images(a, peer, count):
    """real_images before padding: the data set's own 28x28 images, or noise."""
    lo, hi = peer.range
    try:
        if a.uniform:
            raise OSError("--uniform")
        if peer.data == "mnist":
            x, _ = train.mnist(a.data_dir, "train")
        else:
            images = train.read_idx(os.path.join(a.data_dir, "fashion-mnist",
                                                 "train-images-idx3-ubyte"))
            x = torch.from_numpy(images[:count].astype(np.float32) / 255.0).unsqueeze(1)
        return x[:count] * (hi - lo) + lo, "%s's first train images" % (
            "MNIST" if peer.data == "mnist" else "Fashion-MNIST")
    except OSError:
        g = torch.Generator().manual_seed(3)
        return torch.rand((count, 1, 28, 28), generator=g) * (hi - lo) + lo, \
            "uniform [%g, %g] images" % (lo, hi)


def shown(path):
    """path relative to the repository when it is inside it."""
    r = os.path.relpath(os.path.abspath(path), ROOT)
    return path if r.startswith("..") else r


def rel(x, y):
    return abs(x - y) / max(abs(x), abs(y), 1e-3)


def make_peer(a):
    """The peer of the model file a.model: bench/peer/models.py's entry of its name; a
    file of another name (bench/recipes/) is taken for a variant of infogan_mnist,
    whose peer checks that its train block is one it implements."""
    name = os.path.splitext(os.path.basename(a.model))[0]
    if name == "dcgan_fashion":
        sys.exit("parity: dcgan_fashion's peer (bench/peer/models.py) only times its step")
    make = models.MODELS.get(name, models.infogan_mnist)
    return make(train.parse_defines(a.defines), a.model)


# Elements of each parameter tensor that --golden keeps (the tensors are megabytes).
GOLDEN_ELEMENTS = 48


def largest_gradient(opt, settings, param):
    """The largest |gradient| of param in a step with Adam optimizer opt, from its second
    moment (exact after one step)."""
    v = opt.state[param]["exp_avg_sq"] / (1 - settings.get("beta2", 0.999))
    return float(v.sqrt().max())


def save_golden(directory, peer, tensors, batches, outputs):
    """The peer's steps, for tests/cli/peer_golden.sh, which needs no PyTorch: each
    step's inputs (NAME.K.npy for step K, float32 or int32), and in peer.json each
    step's outputs and, after the last step, for each parameter whose gradient is not
    rounding noise, GOLDEN_ELEMENTS of its values and of each step's Adam first moment
    (PARAM@STEP.m, migc's name; after one step it is (1 - beta1) times the gradient, so
    it checks the gradient's size, where the first update only shows its sign) at
    evenly spaced flat indices (the first and last included), with the step's lr, the
    moment's largest magnitude and the share of it the test allows (the peer's
    golden_tol, else 1e-3 in the iteration's first step and 1e-2 in a later one, which
    sees the nets after a first Adam update: lr times each gradient's sign,
    rounding-determined where it is near zero)."""
    os.makedirs(directory, exist_ok=True)
    for k, batch in enumerate(batches):
        for name, t in zip(peer.input_names, batch):
            a = t.numpy()
            np.save(os.path.join(directory, "%s.%d.npy" % (name, k + 1)),
                    a.astype(np.int32 if a.dtype.kind == "i" else np.float32))
    params, moments = {}, {}
    # a gradient that is rounding noise (NOISE_GRADIENT), or under 1e-4 of its step's
    # largest, as the bias of a layer batchnorm follows is: skipped
    largest = {}
    for st_name, (params_of, opt) in peer.steps.items():
        st = peer.recipe["steps"][st_name]
        largest[st_name] = max(largest_gradient(opt, st, q) for q in params_of)
    for name, t in tensors.items():
        if "running" in name:
            continue
        flat = t.detach().numpy().reshape(-1)
        idx = np.unique(np.linspace(0, flat.size - 1, GOLDEN_ELEMENTS).astype(np.int64))
        lr, gradient = 0.0, 0.0
        for st_name, st in peer.recipe["steps"].items():
            params_of, opt = peer.steps[st_name]
            if not any(t is q for q in params_of):
                continue
            lr = max(lr, st["lr"])
            g = largest_gradient(opt, st, t)
            gradient = max(gradient, g if g >= 1e-4 * largest[st_name] else 0.0)
            m = opt.state[t]["exp_avg"].numpy().reshape(-1)
            moments["%s@%s.m" % (name, st_name)] = {
                "index": idx.tolist(), "value": [float(v) for v in m[idx]],
                "max": float(np.abs(m).max()),
                "tol": getattr(peer, "golden_tol", (1e-3, 1e-2))[
                    0 if st_name == next(iter(peer.steps)) else 1]}
        if gradient < NOISE_GRADIENT:
            for st_name in peer.steps:
                moments.pop("%s@%s.m" % (name, st_name), None)
            continue  # its step is rounding noise on both sides (see NOISE_GRADIENT)
        params[name] = {"index": idx.tolist(), "value": [float(v) for v in flat[idx]],
                        "lr": lr}
    with open(os.path.join(directory, "peer.json"), "w") as f:
        json.dump({"torch": torch.__version__, "outputs": outputs, "params": params,
                   "moments": moments}, f, indent=1, sort_keys=True)
        f.write("\n")


def check_steps(a):
    tmp = tempfile.mkdtemp(prefix="migc-parity-")
    try:
        lib = Library(compile_model(a, tmp), 1)
        peer = make_peer(a)
        migc_vars = lib.variables()
        images, what = real_images(a, peer, a.steps * a.batch)
        g = torch.Generator().manual_seed(2)
        worst, stats_worst, param_share, noise, bad = 0.0, 0.0, 0.0, set(), []
        golden_inputs, golden_outputs = [], []
        for step in range(a.steps):
            # The whole state from migc's before every step, so that each step is
            # compared from the same parameters, statistics and moments (afterwards
            # they differ by rounding, which Adam's first steps amplify, see
            # PARAM_SHARE). With --golden only before the first: the peer's steps are
            # then its own from migc's initial state, as the saved golden must be.
            if step == 0 or not a.golden:
                state = {n: v.copy() for n, (_, v) in migc_vars.items()}
                tensors = load_into_peer(peer, state)
                load_optimizers(peer, tensors, state)
            x = images[step * a.batch:(step + 1) * a.batch]
            batch = (x, *peer.latents(a.batch, g))
            m = lib.train_step(dict(zip(peer.input_names, batch)))
            p = {k: v.item() for k, v in peer.step(batch).items()}
            if a.golden:
                golden_inputs.append(batch)
                golden_outputs.append(p)
            if sorted(m) != sorted(p):
                sys.exit("parity: migc's step reports %s, the peer's %s" % (sorted(m), sorted(p)))
            print("parity: step %d: %s" % (step + 1, ", ".join(
                "%s migc %.6f peer %.6f" % (k, m[k], p[k]) for k in m)))
            for k in m:
                worst = max(worst, rel(m[k], p[k]))
                if rel(m[k], p[k]) > LOSS_RTOL:
                    bad.append("step %d %s: migc %.7g, peer %.7g" % (step + 1, k, m[k], p[k]))
            for name, t in tensors.items():
                kind, v = migc_vars[name]
                diff = np.abs(v - t.detach().numpy())
                if kind == KIND_PARAM:
                    lr, gradient = 0.0, 0.0
                    for st, settings in peer.recipe["steps"].items():
                        if name + "@" + st + ".v" in migc_vars:
                            t_step = float(migc_vars[st + ".t"][1].reshape(-1)[0])
                            beta2 = settings.get("beta2", 0.999)
                            v_hat = migc_vars[name + "@" + st + ".v"][1] / (1 - beta2 ** t_step)
                            gradient = max(gradient, float(np.sqrt(v_hat).max()))
                            lr = max(lr, settings["lr"])
                    if gradient < NOISE_GRADIENT:
                        noise.add(name)
                        continue
                    share = float((diff > 0.01 * lr).mean())
                    param_share = max(param_share, share)
                    if share > max(PARAM_SHARE, PARAM_FEW / diff.size):
                        bad.append("%s after step %d: %.1f%% of its elements differ by more "
                                   "than 1%% of lr" % (name, step + 1, 100 * share))
                    continue
                # a statistic taken after disc's update includes the biases before
                # batchnorm, which step by up to lr either way (NOISE_GRADIENT): allow
                # momentum * 2 lr for them
                d = diff.max() / max(np.abs(v).max(), 1e-6)
                d_noise = diff.max() - 0.1 * 2 * max(
                    st["lr"] for st in peer.recipe["steps"].values())
                stats_worst = max(stats_worst, d)
                if d > STATS_RTOL and d_noise > STATS_RTOL * np.abs(v).max():
                    bad.append("%s after step %d: differs by %.2g of its largest value"
                               % (name, step + 1, d))
        print("parity: %s, batch %d, %s, %d steps: largest relative difference of a step's "
              "outputs %.1e, of a running statistic %.1e; at most %.2f%% of a parameter's "
              "elements more than 1%% of lr apart after a step (%d parameters whose "
              "gradient is rounding noise not compared: %s)" % (
                  shown(a.model), a.batch, what, a.steps, worst, stats_worst,
                  100 * param_share, len(noise), ", ".join(sorted(noise))))
        if a.golden:
            save_golden(a.golden, peer, peer_tensors(peer), golden_inputs, golden_outputs)
        if bad:
            sys.exit("parity: the peer does not compute what migc computes:\n  " + "\n  ".join(
                bad[:12] + (["... and %d more" % (len(bad) - 12)] if len(bad) > 12 else [])))
        print("parity: ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        lo, hi = h["data_offsets"]
        out[name] = np.frombuffer(blob, np.float32, (hi - lo) // 4, 8 + n + lo).reshape(h["shape"])
    return out, meta


def evaluate_checkpoint(a):
    state, meta = read_safetensors(a.checkpoint)
    torch.manual_seed(1)
    peer = models.infogan_mnist(train.parse_defines(a.defines), a.model)
    load_into_peer(peer, state)
    test_x, test_y = train.mnist(a.data_dir, "t10k")
    acc, mapping, mi_c = train.evaluate(peer, test_x, test_y, int(meta.get("batch", a.batch)))
    if a.figure:
        train.figure(peer, a.figure)
    print("peer's evaluation of %s (step %s): matched accuracy %.4f (code value -> label: %s), "
          "mi_c %.4f nats on other draws than migc eval's" % (
              a.checkpoint, meta.get("step", "?"), acc,
              " ".join("%d->%d" % (i, l) for i, l in enumerate(mapping)), mi_c))


def main():
    ap = argparse.ArgumentParser(prog="bench/peer/parity.py")
    ap.add_argument("--model", default=models.mig("infogan_mnist"))
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data"))
    ap.add_argument("--migc", default=os.path.join(ROOT, "build", "migc"))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", help="evaluate this migc checkpoint with the peer instead")
    ap.add_argument("--figure", help="with --checkpoint: also draw the peer's figure of it")
    ap.add_argument("--uniform", action="store_true",
                    help="uniform noise in the data's range instead of its first images "
                         "(no exact ties for maxpool, whose flat backgrounds make them)")
    ap.add_argument("--golden", metavar="DIR",
                    help="also save the peer's steps (inputs, outputs, parameters) in DIR")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        evaluate_checkpoint(a) if a.checkpoint else check_steps(a)
    except models.RecipeError as e:
        sys.exit("parity: %s" % e)


if __name__ == "__main__":
    main()
