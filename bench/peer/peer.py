"""Times one PyTorch peer's training step (bench/peer/models.py), as `migc bench` times
migc's, and prints one JSON line with the same fields:

  /usr/bin/python3 bench/peer/peer.py MODEL [--batch B] [--threads T] [--warmup W]
                                           [--steps N] [--time S]

After W warm-up steps it times steps until S seconds have passed (at least 3, at most
N), each by the wall clock (steps_ms) and by the process's CPU time (steps_cpu_ms). The inputs are one batch drawn at start-up and reused: both sides time the step,
not data loading or sampling. first_step_unix is when the first step finished (wall
clock, seconds since the epoch), so the caller, knowing when it started the process,
gets the time from process start to a first finished step, imports included.
"""
import argparse
import ctypes
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def vmhwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def blas_core():
    """The kernels of the OpenBLAS torch loaded (the same library instance: dlopen of a
    loaded soname returns it), as `migc bench` reports its own."""
    try:
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        return blas.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(models.MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--time", type=float, default=2.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    peer = models.MODELS[a.model]()
    batch = peer.inputs(a.batch, torch.Generator().manual_seed(2))
    params = sum(p.numel() for net in peer.nets.values() for p in net.parameters())

    first = None
    for _ in range(max(a.warmup, 1)):
        peer.step(batch)
        if first is None:
            first = time.time()
    times, cpu = [], []
    start = time.perf_counter()
    while len(times) < a.steps and (len(times) < 3 or time.perf_counter() - start < a.time):
        t0, c0 = time.perf_counter(), time.process_time()
        peer.step(batch)
        cpu.append((time.process_time() - c0) * 1e3)
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({
        "side": "peer", "model": a.model, "batch": a.batch, "threads": torch.get_num_threads(),
        "parameters": params, "first_step_unix": first, "steps_ms": times, "steps_cpu_ms": cpu,
        "vmhwm_kb": vmhwm_kb(), "torch": torch.__version__, "blas_core": blas_core(),
    }))


if __name__ == "__main__":
    main()
