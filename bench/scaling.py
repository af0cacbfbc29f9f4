#!/usr/bin/python3
"""Per-step communication and computation of a model's data-parallel training step, and
an alpha-beta projection of ring-allreduce scaling (docs/scaling.md).

  bench/scaling.py MIGC MODEL.mig BATCH STEP_SECONDS [ALPHA_S BETA_S_PER_BYTE]

Reads `migc dump MODEL --grad --batch BATCH` (the whole training step after autodiff
and the optimizer) and counts
  - bytes all-reduced per step: 4 bytes per trained parameter of each optimisation
    step (passes/allreduce.c sends each step's gradients in one buffer; a parameter
    trained by two steps, like Q's, is sent twice), and the number of allreduce calls;
  - FLOPs per step: 2*M*N*K per matmul, 2*N*O*Ho*Wo*C*k*k per conv, deconv and conv
    gradient (the GEMM work; elementwise ops are left out: they are memory-bound and
    small beside the GEMMs).
Then, with STEP_SECONDS the measured single-process time of one step at BATCH, it
projects the step time of P processes sharing the global batch BATCH:
  T(P) = STEP_SECONDS / P + sum over calls of [2 (P-1) alpha + 2 (P-1)/P * bytes * beta]
(ring allreduce: reduce-scatter then allgather, each P-1 messages of bytes/P), plus
log2(P) alpha for each of sync batchnorm's small allreduces (recursive doubling, what
MPI libraries use for small messages), with no overlap of communication and
computation, and efficiency T(1) / (P T(P)).
Prints one line per P in 1 2 8 64.
"""
import math
import re
import subprocess
import sys


def shapes_and_ops(text):
    """train_step's nodes: id -> (op, operand ids, shape, int attributes)."""
    nodes = {}
    body = text.split("func train_step", 1)[1].split("\nfunc ", 1)[0]
    for line in body.splitlines():
        m = re.match(r"\s*%(\d+) = (\w+) ([^{;]*?)\s*(\{[^}]*\})?\s+(f32|i32)\[([\d,]*)\]", line)
        if not m:
            continue
        nid, op, args, attrs, _, dims = m.groups()
        ops = [int(a) for a in re.findall(r"%(\d+)", args)]
        shape = [int(d) for d in dims.split(",") if d]
        at = dict(re.findall(r"(\w+)=(-?\d+)", attrs or ""))
        nodes[int(nid)] = (op, ops, shape, at)
    return nodes


def flops(nodes):
    total = 0
    for op, ins, shape, at in nodes.values():
        if op == "matmul":
            a = nodes[ins[0]][2]
            k = a[0] if at.get("ta") == "1" else a[1]
            total += 2 * shape[0] * shape[1] * k
        elif op in ("conv", "deconv", "conv_grad_x", "conv_grad_w"):
            x, w = nodes[ins[0]][2], nodes[ins[1]][2]
            k = int(at["k"])
            if op == "conv":  # x [N,C,H,W], w [O,C,k,k] -> [N,O,Ho,Wo]
                total += 2 * shape[0] * shape[1] * shape[2] * shape[3] * x[1] * k * k
            elif op == "deconv":  # x [N,C,H,W], w [C,O,k,k]: the adjoint of a conv
                total += 2 * x[0] * x[1] * x[2] * x[3] * w[1] * k * k
            elif op == "conv_grad_x":  # dy [N,O,Ho,Wo], w [O,C,k,k] -> dx
                total += 2 * x[0] * x[1] * x[2] * x[3] * w[1] * k * k
            else:  # x [N,C,H,W], dy [N,O,Ho,Wo] -> dw [O,C,k,k]
                total += 2 * w[0] * w[1] * w[2] * w[3] * shape[1] * k * k
    return total


def sync_bn_calls(nodes):
    """Small allreduces sync batchnorm adds to a step: a batchnorm's statistics (2) and
    its running statistics (2), its adjoint's statistics and two means (3), gamma's
    adjoint's statistics (2)."""
    per = {"batchnorm": 4, "batchnorm_grad": 3, "batchnorm_grad_gamma": 2}
    return sum(per.get(op, 0) for op, _, _, _ in nodes.values())


def allreduce_calls(text):
    """Bytes of each optimisation step's gradients: its trained nets' parameters."""
    params = {}  # var name -> (net, elements)
    steps = []
    for line in text.splitlines():
        m = re.match(r"\s*@(\S+)\s+param\s+f32\[([\d,]*)\]", line)
        if m:
            n = 1
            for d in m.group(2).split(","):
                if d:
                    n *= int(d)
            params[m.group(1)] = (m.group(1).split(".")[0], n)
        m = re.match(r"block \d+: step (\S+) minimizes %\d+ over ([\w, ]+) with", line)
        if m:
            steps.append([s.strip() for s in m.group(2).split(",")])
    return [4 * sum(n for net, n in params.values() if net in nets) for nets in steps]


def main():
    migc, model, batch, step_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    alpha = float(sys.argv[5]) if len(sys.argv) > 5 else 5e-6       # 5 us per message
    beta = float(sys.argv[6]) if len(sys.argv) > 6 else 1 / 10e9    # 10 GB/s links
    text = subprocess.run([migc, "dump", model, "--grad", "--batch", str(batch)],
                          capture_output=True, text=True, check=True).stdout
    calls = allreduce_calls(text)
    nodes = shapes_and_ops(text)
    f = flops(nodes)
    small = sync_bn_calls(nodes)
    print("%s batch %d: %d allreduce calls (%s bytes), %.2f MB all-reduced, %.3f GFLOP per step"
          % (model, batch, len(calls), " + ".join(map(str, calls)), sum(calls) / 1e6, f / 1e9))
    print("  plus %d sync batchnorm allreduces of at most a few KB (latency only)" % small)
    for p in (1, 2, 8, 64):
        comm = sum(2 * (p - 1) * alpha + 2 * (p - 1) / p * b * beta for b in calls)
        comm += small * math.ceil(math.log2(p)) * alpha
        t = step_s / p + comm
        print("  P=%-3d step %.3f ms (compute %.3f, allreduce %.3f), efficiency %.0f%%"
              % (p, 1e3 * t, 1e3 * step_s / p, 1e3 * comm, 100 * step_s / (p * t)))


if __name__ == "__main__":
    main()
