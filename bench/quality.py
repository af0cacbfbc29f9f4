"""bench/quality.sh's work: how fast and how well the InfoGAN recipe of a model file
(models/infogan_mnist.mig) learns with migc and with its PyTorch peer, over seeds.

For each seed it trains one run per side on MNIST, evaluating every E steps, and
records the training time (evaluations excluded) at which the matched accuracy on the
10,000 test digits first reaches the target (0.90), the final accuracy and mi_c, the
time spent evaluating, the whole wall time, and the latent traversal figure; then it
writes the markdown report (bench/quality-peer.md). Before training, bench/peer/parity.py
checks that the peer computes migc's first steps from the same parameters.
bench/README.md and docs/benchmarks.md say what is timed and what is not.
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
PEER_TRAIN = os.path.join(ROOT, "bench", "peer", "train.py")
PARITY = os.path.join(ROOT, "bench", "peer", "parity.py")
SIDES = ["migc", "peer"]
# How far the peer's matched accuracy of a migc checkpoint may be from migc eval's:
# 20 of the 10,000 test images whose two best code values are within rounding.
EVAL_ATOL = 0.002
print_lock = threading.Lock()
children = set()  # the processes running now (two with --side-by-side)


def say(msg):
    with print_lock:
        print(msg, flush=True)


def fail(msg):
    """Stops the whole benchmark, from a side's thread too, and the other side's
    process with it."""
    say("quality: " + msg)
    for p in list(children):
        p.kill()
    os._exit(1)


def start(cmd, env, **kw):
    p = subprocess.Popen(cmd, env=env, text=True, **kw)
    children.add(p)
    return p


def run(cmd, env, what):
    """Runs cmd; returns (stdout, wall seconds). Stops the benchmark if it fails."""
    t0 = time.perf_counter()
    p = start(cmd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    children.discard(p)
    if p.returncode != 0:
        fail("%s failed (exit %d): %s\n%s" % (what, p.returncode, " ".join(cmd),
                                              (err or out)[-3000:]))
    return out, wall


def defines(a):
    return [x for d in a.define for x in ("-D", d)]


# ---- migc ------------------------------------------------------------------------------

def migc_eval(a, run_dir, env):
    """`migc eval RUN`: (accuracy, mi_c, mapping, wall seconds)."""
    out, wall = run([a.migc, "eval", run_dir, "--data-dir", a.data_dir, "--threads",
                     str(a.threads)], env, "migc eval")
    mi = re.search(r"^mi_\w+: ([-0-9.e+]+) nats", out, re.M)
    acc = re.search(r"^matched accuracy: ([0-9.]+) on \d+ images \(code value -> label:(.*)\)",
                    out, re.M)
    if not mi or not acc:
        fail("cannot read migc eval's output:\n" + out)
    mapping = [int(p.split("->")[1]) for p in acc.group(2).split()]
    return float(acc.group(1)), float(mi.group(1)), mapping, wall


def check_peer_eval(a, run_dir, step, acc, env):
    """The peer's evaluation of migc's checkpoint must find the accuracy `migc eval`
    found: both encode with batchnorm on its running statistics and match code values
    to labels the same way (a near tie between two code values may round apart)."""
    ckpt = os.path.join(run_dir, "checkpoints", "step-%08d.safetensors" % step)
    out, _ = run([PYTHON, PARITY, "--checkpoint", ckpt, "--data-dir", a.data_dir, "--model",
                  a.model] + defines(a), env, "the peer's evaluation of migc's checkpoint")
    m = re.search(r"matched accuracy ([0-9.]+)", out)
    if not m or abs(float(m.group(1)) - acc) > EVAL_ATOL:
        fail("the peer evaluates migc's step-%d checkpoint otherwise than migc eval "
             "(accuracy %.4f): %s" % (step, acc, out))
    a.eval_checked = "the peer's evaluation of migc's step-%d checkpoint (seed %d): matched " \
        "accuracy %s, migc eval's %.4f" % (step, a.seeds[0], m.group(1), acc)
    say("quality: " + a.eval_checked)


def train_migc(a, seed, run_dir, env):
    """Trains migc's run of seed to a.steps in run_dir, yielding an evaluation after
    every a.eval_every steps and after the last: {step, train_s (wall seconds of the
    train commands so far), loop_s (the part of it the training loop reports in
    metrics.csv: steps only, without start-up, compile, data loading and the
    checkpoint), eval_s, accuracy, mi_c, mapping}.

    migc train has no --eval-every yet, so this trains in chunks: `migc train --steps
    E`, then `--resume` to 2E, 3E, ..., each command timed whole (a resumed run is bit
    for bit the uninterrupted one: tests/cli/train.sh), with `migc eval` between them.
    When migc train can evaluate during a run, this function becomes one command whose
    evaluations it reads, and is the only one to change."""
    train_s = loop_s = 0.0
    done = 0
    while done < a.steps:
        target = min(done + a.eval_every, a.steps)
        cmd = [a.migc, "train", a.model, "--data-dir", a.data_dir, "--seed", str(seed),
               "--steps", str(target), "--batch", str(a.batch), "--threads", str(a.threads),
               "--save-every", str(target), "--keep", "1", "--log-every", str(a.eval_every),
               "--sample-every", str(a.steps)] + defines(a)
        cmd += ["--resume", run_dir] if done else ["--out", run_dir]
        _, wall = run(cmd, env, "migc train")
        train_s += wall
        with open(os.path.join(run_dir, "metrics.csv")) as f:
            last = f.read().split()[-1].split(",")
        if int(last[0]) != target:
            fail("%s/metrics.csv ends at step %s, not %d" % (run_dir, last[0], target))
        loop_s += float(last[1])
        done = target
        acc, mi_c, mapping, eval_s = migc_eval(a, run_dir, env)
        yield {"step": done, "train_s": train_s, "loop_s": loop_s, "eval_s": eval_s,
               "accuracy": acc, "mi_c": mi_c, "mapping": mapping}


def side_migc(a, seed, env, record):
    run_dir = os.path.join(a.work, "migc-seed%d" % seed)
    shutil.rmtree(run_dir, ignore_errors=True)
    for e in train_migc(a, seed, run_dir, env):
        record.add_eval(e)
        if a.check_eval and len(record.evals) == 1 and seed == a.seeds[0]:
            check_peer_eval(a, run_dir, e["step"], e["accuracy"], env)
    fig = os.path.join(a.figures, "migc-seed%d.png" % seed)
    run([a.migc, "sample", run_dir, "--grid", fig, "--threads", str(a.threads)], env,
        "migc sample")
    record.figure = fig
    if not a.keep_runs:
        shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)


# ---- the peer --------------------------------------------------------------------------

def side_peer(a, seed, env, record):
    fig = os.path.join(a.figures, "peer-seed%d.png" % seed)
    cmd = [PYTHON, PEER_TRAIN, "--data-dir", a.data_dir, "--model", a.model, "--seed",
           str(seed), "--steps", str(a.steps), "--eval-every", str(a.eval_every), "--batch",
           str(a.batch), "--threads", str(a.threads), "--figure", fig] + defines(a)
    with tempfile.TemporaryFile("w+") as err:
        p = start(cmd, env, stdout=subprocess.PIPE, stderr=err)
        for line in p.stdout:
            if line.startswith("{"):
                record.add_eval(dict(json.loads(line), loop_s=None))
        p.wait()
        children.discard(p)
        if p.returncode != 0:
            err.seek(0)
            fail("the peer failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                        err.read()[-3000:]))
    record.figure = fig


# ---- runs and the report ---------------------------------------------------------------

class Record:
    """One run: a side and a seed, its evaluations, times and figure."""

    def __init__(self, a, side, seed, report):
        self.a, self.side, self.seed, self.report = a, side, seed, report
        self.evals, self.figure, self.wall_s = [], None, None

    def add_eval(self, e):
        """e: {step, train_s, loop_s (migc's; None for the peer), eval_s, accuracy, mi_c,
        mapping}."""
        self.evals.append(e)
        say("%-4s seed %d step %5d: matched accuracy %.4f, mi_c %.4f nats; training %.1f s, "
            "this evaluation %.1f s" % (self.side, self.seed, e["step"], e["accuracy"],
                                        e["mi_c"], e["train_s"], e["eval_s"]))
        self.report()

    def reached(self):
        """The first evaluation at or above the target, or None."""
        return next((e for e in self.evals if e["accuracy"] >= self.a.target), None)

    def done(self):
        return self.wall_s is not None


def run_side(a, side, seed, env, record):
    t0 = time.perf_counter()
    (side_migc if side == "migc" else side_peer)(a, seed, env, record)
    record.wall_s = time.perf_counter() - t0
    record.report()


def idx_count(path):
    """The item count of an IDX file (plain or .gz): the data set the report names."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            return struct.unpack(">I", f.read(8)[4:8])[0]
    except (OSError, struct.error):
        fail("cannot read %s: --data-dir must hold mnist/ with the IDX files" % path)


def machine(a):
    info = {"cpu": platform.processor() or "?", "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1).strip() if m else info["cpu"]
    except OSError:
        pass
    info["migc"] = subprocess.run([a.migc, "version"], capture_output=True,
                                  text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    info["migc"] += " (commit %s)" % commit if commit else ""
    info["torch"] = subprocess.run([PYTHON, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True).stdout.strip() or "?"
    for part, key in (("train", "train_n"), ("t10k", "test_n")):
        info[key] = "{:,}".format(idx_count(os.path.join(a.data_dir, "mnist",
                                                         part + "-images-idx3-ubyte")))
    info["load"] = "%.2f %.2f %.2f" % os.getloadavg()
    info["pins"] = " ".join("%s=%s" % (k, os.environ[k]) for k in
                            ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    return info


def fmt_s(x):
    return "-" if x is None else "%.0f" % x if x >= 100 else "%.1f" % x


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def train_time(e):
    """An evaluation's training seconds; migc's loop seconds in brackets."""
    return fmt_s(e["train_s"]) + (" (%s)" % fmt_s(e["loop_s"]) if e["loop_s"] is not None
                                  else "")


def render(a, info, records, parity, planned):
    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(a.out)))  # noqa: E731
    L = ["# InfoGAN quality: migc against PyTorch, time to matched accuracy %.2f" % a.target, "",
         "Generated by `bench/quality.sh %s` on %s UTC; do not edit by hand." % (
             " ".join(a.argv), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")), ""]
    L += ["| setting | |", "|---|---|",
          "| model | `%s`%s, batch %d |" % (os.path.relpath(a.model, ROOT), "".join(
              " `-D %s`" % d for d in a.define), a.batch),
          "| data | MNIST in `%s`: %s train images, %s test images (the matched "
          "accuracy) |" % (a.data_dir, info["train_n"], info["test_n"]),
          "| runs | seeds %s, %d steps each, evaluated every %d steps and after the last |" % (
              ", ".join(map(str, a.seeds)), a.steps, a.eval_every),
          "| threads | %d per side%s |" % (a.threads, ", migc and the peer running at the same "
                                          "time" if a.side_by_side else
                                          ", one run at a time"),
          "| CPU | %s, %d cores; load average %s at the start, %s at the end |" % (
              info["cpu"], info["cores"], info["load"], info.get("load_end", "-")),
          "| OpenBLAS kernels | %s |" % (info["pins"] or "OpenBLAS's own choice"),
          "| migc | %s |" % info["migc"],
          "| peer | PyTorch %s, bench/peer/models.py's infogan_mnist, trained by "
          "bench/peer/train.py |" % info["torch"],
          "| parity | %s |" % parity]
    if a.eval_checked:
        L.append("| evaluation | %s |" % a.eval_checked)
    L.append("")
    if sum(r.done() for r in records) < planned:
        L += ["**Partial: %d of %d runs finished so far (rewritten after every evaluation).**"
              % (sum(r.done() for r in records), planned), ""]
    L += ["Training time: wall seconds of training only, evaluations excluded. migc: the "
          "`migc train` commands, one per %d steps (each starts, compiles, loads the data, "
          "trains and writes a checkpoint); in brackets the training loop's own seconds "
          "(metrics.csv). Peer: the training steps, data batches and latent draws included, "
          "start-up (import, data loading) excluded. Evaluation: `migc eval` per "
          "evaluation (the whole command), the peer's evaluation in its process. "
          "docs/benchmarks.md, \"Quality\"." % a.eval_every, ""]
    L += ["## Summary (medians over the seeds that ran)", "",
          "| side | runs | reached %.2f | training s to %.2f | final accuracy | final mi_c "
          "nats | training s, all steps | steps/s in the loop | evaluation s | wall s |" % (
              a.target, a.target),
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for side in a.sides:
        rs = [r for r in records if r.side == side and r.evals]
        if not rs:
            continue
        hit = [r.reached() for r in rs]
        L.append("| %s | %d | %d | %s | %.4f | %.4f | %s | %.2f | %s | %s |" % (
            side, len(rs), sum(h is not None for h in hit),
            fmt_s(med([h["train_s"] for h in hit if h])),
            med([r.evals[-1]["accuracy"] for r in rs]), med([r.evals[-1]["mi_c"] for r in rs]),
            fmt_s(med([r.evals[-1]["train_s"] for r in rs])),
            med([r.evals[-1]["step"] / (r.evals[-1]["loop_s"] or r.evals[-1]["train_s"])
                 for r in rs]),
            fmt_s(med([sum(e["eval_s"] for e in r.evals) for r in rs])),
            fmt_s(med([r.wall_s for r in rs]))))
    L += ["", "## Runs", "",
          "| side | seed | steps | first step at >= %.2f | training s to it | final accuracy "
          "| final mi_c nats | training s | evaluation s | wall s | code value -> label |"
          % a.target, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    records = sorted(records, key=lambda r: (a.sides.index(r.side), r.seed))
    for r in records:
        if not r.evals:
            continue
        h, last = r.reached(), r.evals[-1]
        L.append("| %s | %d | %d%s | %s | %s | %.4f | %.4f | %s | %s | %s | %s |" % (
            r.side, r.seed, last["step"], "" if r.done() else " (running)",
            h["step"] if h else "not reached", train_time(h) if h else "-",
            last["accuracy"], last["mi_c"], train_time(last),
            fmt_s(sum(e["eval_s"] for e in r.evals)),
            fmt_s(r.wall_s), " ".join("%d->%d" % (i, l) for i, l in enumerate(last["mapping"]))))
    steps = sorted({e["step"] for r in records for e in r.evals})
    cols = [r for r in records if r.evals]
    L += ["", "## Matched accuracy by step (training seconds in brackets)", "",
          "| step | " + " | ".join("%s seed %d" % (r.side, r.seed) for r in cols) + " |",
          "|---:|" + "---:|" * len(cols)]
    for s in steps:
        cells = []
        for r in cols:
            e = next((e for e in r.evals if e["step"] == s), None)
            cells.append("%.3f (%s)" % (e["accuracy"], fmt_s(e["train_s"])) if e else "")
        L.append("| %d | %s |" % (s, " | ".join(cells)))
    L += ["", "## Latent traversal figures", "",
          "One row per value of the categorical code c, columns sweeping the continuous code "
          "s[0] from -2 to 2, every other latent fixed (the other continuous code 0, one draw "
          "of z): `migc sample RUN` for migc, the same cells drawn by bench/peer/train.py for "
          "the peer, both with batchnorm on its running statistics.", ""]
    for r in records:
        if r.figure:
            L.append("- %s seed %d: [%s](%s)" % (r.side, r.seed, rel(r.figure), rel(r.figure)))
    L.append("")
    return "\n".join(L)


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_seeds(text):
    if "," in text:
        return [int(s) for s in text.split(",") if s]
    return list(range(1, int(text) + 1))


def main():
    ap = argparse.ArgumentParser(
        prog="bench/quality.sh",
        description="Trains the InfoGAN recipe of a model file with migc and with its PyTorch "
        "peer, several seeds each, and reports the training time to a matched accuracy, "
        "the final accuracy and mi_c, and the latent traversal figures.")
    ap.add_argument("--seeds", default="3", help="N: seeds 1..N (default 3); or a list, 1,4,7")
    ap.add_argument("--steps", type=int, default=5000,
                    help="steps per run (default 5000, the recipe's length: bench/quality.md)")
    ap.add_argument("--eval-every", type=int, default=100,
                    help="evaluate every E steps, and after the last (default 100)")
    ap.add_argument("--target", type=float, default=0.90,
                    help="the matched accuracy whose first reaching is timed (default 0.90)")
    ap.add_argument("--threads", type=int,
                    help="threads per side (default 2; 1 with --side-by-side)")
    ap.add_argument("--side-by-side", action="store_true",
                    help="run each seed's migc and peer runs at the same time, not one "
                    "after the other (on 2 cores: --threads 1 each, the default then)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data"),
                    help="holds mnist/ with the IDX files (default data)")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "infogan_mnist.mig"),
                    help="the model file (default models/infogan_mnist.mig); the peer is "
                    "infogan_mnist's architecture with this file's constants and objectives")
    ap.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of the model, for migc and the peer alike")
    ap.add_argument("--sides", default="migc,peer", help="migc,peer (default), migc or peer")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "quality-peer.md"),
                    help="the report (default bench/quality-peer.md; '-': print it only)")
    ap.add_argument("--figures", help="where the figures go (default: beside --out, in a "
                    "folder named like it without .md; with --out -: in --work)")
    ap.add_argument("--work", help="where migc's run directories go (default: a temporary "
                    "folder, removed at the end)")
    ap.add_argument("--keep-runs", action="store_true",
                    help="keep migc's run directories and their last checkpoints")
    ap.add_argument("--no-parity", action="store_true",
                    help="skip bench/peer/parity.py's check of the peer's first steps")
    ap.add_argument("--migc", default=os.path.join(ROOT, "build", "migc"))
    a = ap.parse_args()
    a.argv = sys.argv[1:]
    a.seeds = parse_seeds(a.seeds)
    a.sides = [s for s in a.sides.split(",") if s]
    if not a.seeds or any(s not in SIDES for s in a.sides) or not a.sides:
        ap.error("--seeds needs at least one seed and --sides migc, peer or both")
    if a.steps < 1 or a.eval_every < 1:
        ap.error("--steps and --eval-every must be at least 1")
    if a.threads is None:
        a.threads = 1 if a.side_by_side else 2
    if "peer" in a.sides and subprocess.run([PYTHON, "-c", "import torch"],
                                            capture_output=True).returncode != 0:
        ap.error("the peer needs python3-torch (scripts/install-deps.sh --bench installs it); "
                 "--sides migc runs migc alone")
    # after migc's first evaluation, the peer evaluates that checkpoint too (check_peer_eval)
    a.check_eval, a.eval_checked = "peer" in a.sides and not a.no_parity, None
    a.model, a.data_dir = os.path.abspath(a.model), os.path.abspath(a.data_dir)
    temp_work = a.work is None
    a.work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="migc-quality-"))
    os.makedirs(a.work, exist_ok=True)
    if a.figures is None:
        a.figures = a.work if a.out == "-" else os.path.splitext(os.path.abspath(a.out))[0]
    os.makedirs(a.figures, exist_ok=True)
    # As bench/run.sh: the same thread count for every library, and waiting threads
    # that sleep instead of spinning on a shared machine (docs/benchmarks.md).
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads),
               OPENBLAS_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE",
               OPENBLAS_THREAD_TIMEOUT="4")
    info = machine(a)
    parity = "skipped (--no-parity)"
    if "peer" in a.sides and not a.no_parity:
        out, _ = run([PYTHON, PARITY, "--model", a.model, "--batch", str(a.batch), "--data-dir",
                      a.data_dir, "--migc", a.migc] + defines(a), env,
                     "the parity check (bench/peer/parity.py)")
        say(out.rstrip())
        summary = [l for l in out.splitlines() if "largest relative difference" in l]
        parity = "bench/peer/parity.py: the first steps from migc's parameters agree; " + (
            summary[0].split(": ", 2)[-1] if summary else "")
    records, planned = [], len(a.seeds) * len(a.sides)
    lock = threading.Lock()

    def report():
        if a.out == "-":
            return
        with lock:
            info["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
            write(a.out, render(a, info, records, parity, planned))
    for i, seed in enumerate(a.seeds):
        # each side goes first in turn, so drift in the machine's load falls on both
        order = a.sides[i % len(a.sides):] + a.sides[:i % len(a.sides)]
        batch = [Record(a, side, seed, report) for side in order]
        records.extend(batch)
        threads = [threading.Thread(target=run_side, args=(a, r.side, seed, env, r))
                   for r in batch]
        for t in threads:
            t.start()
            if not a.side_by_side:
                t.join()
        for t in threads:
            t.join()
    info["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    text = render(a, info, records, parity, planned)
    if a.out == "-":
        print(text)
    else:
        write(a.out, text)
        say("quality: wrote %s (figures in %s)" % (a.out, a.figures))
    if temp_work and not a.keep_runs and a.figures != a.work:
        shutil.rmtree(a.work, ignore_errors=True)
    elif a.figures == a.work:
        say("quality: figures in %s" % a.figures)


if __name__ == "__main__":
    main()
