"""bench/run.sh's work: migc's training step next to its PyTorch peer, side by side.

For every model and batch size it runs `migc bench` and bench/peer/peer.py in turn,
`--reps` times each, alternating which goes first, with the same thread count; each
process compiles (or imports), warms up, then times steps on one fixed batch. It checks
that both sides have the same parameter count before it reports a time, then prints
and writes (bench/results.md) the median, min and max ms per step of each side and
their ratio, migc's JIT compile time, the time from process start to the first
finished step and the peak resident memory of each side. See bench/README.md.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "bench", "peer", "peer.py")
PYTHON = "/usr/bin/python3"
MODELS = ["infogan_mnist", "infogan_mlp", "dcgan_fashion", "seed_infogan", "wgan_gp_fashion",
          "infogan_r1_mnist", "resnet_fashion"]
# The targets, at 2 threads and batch 64.
RATIO_TARGETS = {"infogan_mnist": 0.25, "infogan_mlp": 0.2}
COMPILE_TARGET_S, FIRST_STEP_TARGET_S, RSS_TARGET, ATTAINABLE_TARGET = 0.5, 1.0, 0.5, 1.3
# What pins OpenBLAS's kernels and cache blocking instead of letting it pick them for
# this CPU; `--blas own` removes them from both sides' environment.
BLAS_PINS = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]
# How closely the first step's losses must agree between OpenBLAS's own kernels and the
# pinned ones: different kernels sum in a different order, wrong ones disagree wildly.
LOSS_RTOL = 1e-3


def have_torch():
    return subprocess.run([PYTHON, "-c", "import torch"], capture_output=True).returncode == 0


def run_side(cmd, env):
    """Runs one side; returns its JSON with the harness's own measurements added:
    start_to_first_step_s (from just before the process was started) and maxrss_kb
    (getrusage of the child, as the kernel counts it)."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        _, status, rusage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0), fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        sys.exit("bench: %s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode,
                                                     err.decode(errors="replace")[-2000:]))
    lines = [l for l in out.decode().splitlines() if l.startswith("{")]
    if not lines:
        sys.exit("bench: %s printed no JSON:\n%s" % (" ".join(cmd), out.decode()[-2000:]))
    r = json.loads(lines[-1])
    r["start_to_first_step_s"] = r["first_step_unix"] - t0
    r["maxrss_kb"] = rusage.ru_maxrss
    r["stderr"] = err.decode(errors="replace")
    return r


def summarize(runs):
    steps = [t for r in runs for t in r["steps_ms"]]
    cpu = [t for r in runs for t in r["steps_cpu_ms"]]
    s = {
        "median": statistics.median(steps), "min": min(steps), "max": max(steps),
        "cpu_median": statistics.median(cpu),
        "n": len(steps),
        "first_step_s": statistics.median(r["start_to_first_step_s"] for r in runs),
        "rss_mb": max(max(r["vmhwm_kb"], r["maxrss_kb"]) for r in runs) / 1024,
        "parameters": runs[0]["parameters"],
    }
    if "compile_ms" in runs[0]:
        s["compile_ms"] = statistics.median(r["compile_ms"] for r in runs)
        s["frontend_ms"] = statistics.median(r["frontend_ms"] for r in runs)
    return s


def machine(migc):
    info = {"cpu": platform.processor() or "?", "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            if m:
                info["cpu"] = m.group(1).strip()
    except OSError:
        pass
    try:
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_config.restype = ctypes.c_char_p
        info["openblas"] = blas.openblas_get_config().decode()
    except (OSError, AttributeError):
        info["openblas"] = "?"
    llvm = shutil.which("llvm-config-14") or shutil.which("llvm-config")
    info["llvm"] = subprocess.run([llvm, "--version"], capture_output=True,
                                  text=True).stdout.strip() if llvm else "?"
    info["migc"] = subprocess.run([migc, "version"], capture_output=True,
                                  text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    info["migc"] += " (commit %s)" % commit if commit else ""
    info["load"] = "%.2f %.2f %.2f" % os.getloadavg()
    return info


def fmt_ms(x):
    return "%.1f" % x if x >= 10 else "%.2f" % x


def main():
    ap = argparse.ArgumentParser(prog="bench/run.sh")
    ap.add_argument("--migc", default=os.path.join(ROOT, "build", "migc"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="64,16,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="processes per side (alternating)")
    ap.add_argument("--time", type=float, default=2.0, help="seconds of timed steps per process")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", help="results file ('-': print only; default bench/results.md, "
                    "with --blas own bench/results-blas-own.md)")
    ap.add_argument("--blas", choices=["as-set", "own"], default="as-set",
                    help="as-set: OpenBLAS's kernels as the environment sets them; own: both "
                    "sides without %s, so OpenBLAS picks its kernels for this CPU (checked "
                    "first against the pinned ones on every model's first step)"
                    % " and ".join(BLAS_PINS))
    ap.add_argument("--smoke", action="store_true",
                    help="one model, batch 16, one short run per side, no results file")
    a = ap.parse_args()
    if a.smoke:
        a.models, a.batches, a.reps, a.time, a.warmup, a.out = "infogan_mlp", "16", 1, 0, 1, "-"
    if a.out is None:
        a.out = os.path.join(ROOT, "bench", "results-blas-own.md" if a.blas == "own"
                             else "results.md")
    models = a.models.split(",")
    batches = [int(b) for b in a.batches.split(",")]
    peer = have_torch()
    if not peer:
        print("bench: peer skipped: python3-torch is not installed "
              "(scripts/install-deps.sh --bench installs it); timing migc alone", flush=True)
    # The same environment for every side. OMP_WAIT_POLICY=PASSIVE and a short
    # OPENBLAS_THREAD_TIMEOUT (idle OpenBLAS threads sleep after 2^4 cycles instead of
    # spinning for 2^28) keep waiting threads from taking the cores that working ones
    # need on a shared machine (docs/benchmarks.md).
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads),
               OMP_WAIT_POLICY="PASSIVE", OPENBLAS_THREAD_TIMEOUT="4")
    info = machine(a.migc)
    info["pins"] = " ".join("%s=%s" % (k, env[k]) for k in BLAS_PINS if k in env)
    if a.blas == "own":
        check_own_blas(a, models, batches[0], dict(env))
        for k in BLAS_PINS:
            env.pop(k, None)
    has_compile = subprocess.run([a.migc, "compile", "--help"], capture_output=True,
                                 text=True).stdout.startswith("usage: migc compile")
    tmp = tempfile.mkdtemp(prefix="migc-bench-")
    rows = []
    print("%-14s %5s | %-26s | %-26s | %9s" % ("model", "batch", "migc ms/step med (min-max)",
                                               "peer ms/step med (min-max)", "migc/peer"),
          flush=True)
    # batch-major, in the order given (64 first by default: the targets' batch), and
    # the results file rewritten after every row, so an interrupted run leaves its rows
    for batch in batches:
        for model in models:
            path = os.path.join(ROOT, "models", model + ".mig")
            migc_cmd = [a.migc, "bench", path, "--batch", str(batch), "--threads",
                        str(a.threads), "--warmup", str(a.warmup), "--time", str(a.time)]
            peer_cmd = [PYTHON, PEER, model, "--batch", str(batch), "--threads",
                        str(a.threads), "--warmup", str(a.warmup), "--time", str(a.time)]
            sides = [("migc", migc_cmd), ("peer", peer_cmd)]
            so_compile_s = None
            if has_compile:
                so = os.path.join(tmp, "lib%s_%d.so" % (model, batch))
                t0 = time.time()
                c = subprocess.run([a.migc, "compile", path, "--batch", str(batch), "-o", so],
                                   capture_output=True, text=True, env=env)
                so_compile_s = time.time() - t0
                if c.returncode != 0:
                    sys.exit("bench: migc compile %s failed:\n%s" % (path, c.stderr[-2000:]))
                sides.insert(1, ("so", migc_cmd[:5] + ["--so", so] + migc_cmd[5:]))
            runs = {"migc": [], "so": [], "peer": []}
            for rep in range(a.reps):
                k = rep % len(sides)
                for side, cmd in sides[k:] + sides[:k]:  # each side leads in turn
                    if side == "peer" and not peer:
                        continue
                    runs[side].append(run_side(cmd, env))
            mruns, pruns = runs["migc"], runs["peer"]
            m = summarize(mruns)
            # one more migc process with --profile: the GEMM share and attainable time
            prof = run_side(migc_cmd[:-4] + ["--warmup", "1", "--time", "0", "--profile"], env)
            m["gemm_share"] = prof["gemm_ms"] / prof["profiled_step_ms"]
            m["attainable_ms"] = prof["attainable_ms"]
            m["split_alone_ms"] = prof["split_alone_ms"]
            p = summarize(pruns) if pruns else None
            if p and p["parameters"] != m["parameters"]:
                sys.exit("bench: %s: migc has %d parameters, the peer %d: the peer is not the "
                         "same model" % (model, m["parameters"], p["parameters"]))
            so_s = summarize(runs["so"]) if runs["so"] else None
            if so_s:
                so_s["compile_s"] = so_compile_s
            rows.append({"model": model, "batch": batch, "migc": m, "peer": p, "so": so_s})
            info.setdefault("cores_used", {}).update(
                {side: rs[0].get("blas_core", "?") for side, rs in runs.items() if rs})
            ps = "%s (%s-%s)" % (fmt_ms(p["median"]), fmt_ms(p["min"]), fmt_ms(p["max"])) \
                if p else "-"
            print("%-14s %5d | %-26s | %-26s | %9s" % (
                model, batch, "%s (%s-%s)" % (fmt_ms(m["median"]), fmt_ms(m["min"]),
                                              fmt_ms(m["max"])),
                ps, "%.3f" % (m["median"] / p["median"]) if p else "-"), flush=True)
            if a.out != "-":
                info["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
                write_report(a.out, render(rows, info, a, peer, len(models) * len(batches)))
    info["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    shutil.rmtree(tmp, ignore_errors=True)
    report = render(rows, info, a, peer, len(rows))
    if a.out == "-":
        print(report)
    else:
        write_report(a.out, report)
        print("bench: wrote %s" % a.out)


def check_own_blas(a, models, batch, pinned):
    """Runs each model's first step with the pinned kernels and with OpenBLAS's own and
    exits unless their losses agree (an OpenBLAS too old for this CPU computes wrong
    results with its own choice: that is why a machine pins it)."""
    own = {k: v for k, v in pinned.items() if k not in BLAS_PINS}
    for model in models:
        cmd = [a.migc, "bench", os.path.join(ROOT, "models", model + ".mig"), "--batch",
               str(batch), "--threads", str(a.threads), "--warmup", "1", "--time", "0"]
        p, o = run_side(cmd, pinned), run_side(cmd, own)
        bad = [(x, y) for x, y in zip(p["first_losses"], o["first_losses"])
               if abs(x - y) > LOSS_RTOL * max(abs(x), abs(y), 1e-3)]
        if bad or len(p["first_losses"]) != len(o["first_losses"]):
            sys.exit("bench: %s: the first step's losses with OpenBLAS's own kernels (%s) %s "
                     "differ from the pinned ones (%s) %s: not timing kernels that compute "
                     "something else" % (model, o["blas_core"], o["first_losses"],
                                         p["blas_core"], p["first_losses"]))
        print("bench: %s: first-step losses agree, core %s against %s (largest relative "
              "difference %.1e)" % (model, o["blas_core"], p["blas_core"], max(
                  [abs(x - y) / max(abs(x), abs(y), 1e-3)
                   for x, y in zip(p["first_losses"], o["first_losses"])] or [0])), flush=True)


def write_report(path, report):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(report)
    os.replace(tmp, path)


def render(rows, info, a, peer, planned):
    L = []
    L.append("# migc vs PyTorch: training step on the CPU")
    L.append("")
    L.append("Generated by `bench/run.sh %s` on %s UTC; do not edit by hand."
             % (" ".join(sys.argv[1:]),
                datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")))
    L.append("")
    L.append("| machine | |")
    L.append("|---|---|")
    L.append("| CPU | %s, %d cores |" % (info["cpu"], info["cores"]))
    L.append("| OpenBLAS | %s |" % info["openblas"])
    used = info.get("cores_used", {})
    L.append("| OpenBLAS kernels | %s; in use: %s |" % (
        ("own choice (`--blas own`: %s removed from both sides' environment)" % (
            info["pins"] or "nothing was set")) if a.blas == "own" else
        ("pinned by the environment: %s (`--blas own` lets OpenBLAS choose)" % info["pins"])
        if info["pins"] else "OpenBLAS's own choice (nothing pins it)",
        ", ".join("%s %s" % ({"so": "migc .so"}.get(k, k), v)
                  for k, v in sorted(used.items())) or "-"))
    L.append("| LLVM | %s |" % info["llvm"])
    L.append("| migc | %s |" % info["migc"])
    L.append("| threads | %d per side (`--threads`; peer: torch.set_num_threads, "
             "OMP_NUM_THREADS, OPENBLAS_NUM_THREADS; both: OMP_WAIT_POLICY=PASSIVE, "
             "OPENBLAS_THREAD_TIMEOUT=4) |" % a.threads)
    L.append("| load average | %s at the start, %s at the end%s |" % (
        info["load"], info["load_end"],
        " (the machine was shared: timings are noisy)"
        if float(info["load"].split()[0]) > 0.5 * info["cores"] else ""))
    L.append("| method | %d processes per side per row, alternating; each: %d warm-up steps, "
             "then steps on one fixed batch for %.1f s (at least 3) |" % (a.reps, a.warmup, a.time))
    L.append("")
    if len(rows) < planned:
        L.append("**Partial: %d of %d rows so far (the file is rewritten after each row).**"
                 % (len(rows), planned))
        L.append("")
    if not peer:
        L.append("**The peer was not run: python3-torch is not installed.**")
        L.append("")
    L.append("## Step time (ms per training step: every step of the train block)")
    L.append("")
    L.append("| model | batch | migc median | min | max | peer median | min | max | migc/peer |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        m, p = r["migc"], r["peer"]
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], r["batch"], fmt_ms(m["median"]), fmt_ms(m["min"]), fmt_ms(m["max"]),
            fmt_ms(p["median"]) if p else "-", fmt_ms(p["min"]) if p else "-",
            fmt_ms(p["max"]) if p else "-", "%.3f" % (m["median"] / p["median"]) if p else "-"))
    L.append("")
    L.append("CPU time per step (the process's CPU time, all its threads; medians): on a "
             "shared machine the wall clock above includes time spent waiting for a core, "
             "this does not, but it counts a spinning thread's wait as work.")
    L.append("")
    L.append("| model | batch | migc CPU ms | peer CPU ms | migc/peer |")
    L.append("|---|---:|---:|---:|---:|")
    for r in rows:
        m, p = r["migc"], r["peer"]
        L.append("| %s | %d | %s | %s | %s |" % (
            r["model"], r["batch"], fmt_ms(m["cpu_median"]),
            fmt_ms(p["cpu_median"]) if p else "-",
            "%.3f" % (m["cpu_median"] / p["cpu_median"]) if p else "-"))
    L.append("")
    L.append("## Start-up and memory")
    L.append("")
    L.append("JIT compile: migc's codegen (lower, optimise, machine code); front end: parse, "
             "elaborate, passes. First step: from just before the process was started to "
             "the end of its first step (the peer's includes `import torch`). Peak RSS: "
             "the largest of VmHWM and getrusage's ru_maxrss over the side's processes.")
    L.append("")
    L.append("| model | batch | JIT compile s | front end s | migc first step s | "
             "peer first step s | migc peak RSS MB | peer peak RSS MB | RSS migc/peer |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        m, p = r["migc"], r["peer"]
        L.append("| %s | %d | %.3f | %.3f | %.2f | %s | %.0f | %s | %s |" % (
            r["model"], r["batch"], m["compile_ms"] / 1e3, m["frontend_ms"] / 1e3,
            m["first_step_s"], "%.2f" % p["first_step_s"] if p else "-", m["rss_mb"],
            "%.0f" % p["rss_mb"] if p else "-",
            "%.2f" % (m["rss_mb"] / p["rss_mb"]) if p else "-"))
    L.append("")
    L.append("## Where migc's step goes (`migc bench --profile`, one more process per row)")
    L.append("")
    L.append("GEMM share: time inside cblas_sgemm over the profiled step's time. Attainable: "
             "the sum over the step's GEMMs of what OpenBLAS takes for each shape alone on its "
             "own threads, timed by migc at the end of the profiled run; beside it the same "
             "calls alone as the step makes them (split into blocks over migc's threads, so "
             "that a result is the same bits for any thread count). docs/benchmarks.md.")
    L.append("")
    L.append("| model | batch | GEMM share | attainable ms | as migc calls them ms | "
             "migc median ms | migc / attainable |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        m = r["migc"]
        L.append("| %s | %d | %.0f%% | %s | %s | %s | %.2f |" % (
            r["model"], r["batch"], 100 * m["gemm_share"], fmt_ms(m["attainable_ms"]),
            fmt_ms(m["split_alone_ms"]), fmt_ms(m["median"]),
            m["median"] / m["attainable_ms"]))
    L.append("")
    L.append("## Scaling with the batch (median step time relative to batch 16)")
    L.append("")
    L.append("| model | batch | migc | peer |")
    L.append("|---|---:|---:|---:|")
    for r in rows:
        base = [x for x in rows if x["model"] == r["model"] and x["batch"] == min(
            y["batch"] for y in rows if y["model"] == r["model"])][0]
        p = r["peer"]
        L.append("| %s | %d | %.2fx | %s |" % (
            r["model"], r["batch"], r["migc"]["median"] / base["migc"]["median"],
            "%.2fx" % (p["median"] / base["peer"]["median"]) if p else "-"))
    L.append("")
    L.append("## Targets (issue 7: %d threads, batch 64)" % a.threads)
    L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")
    for r in rows:
        m, p = r["migc"], r["peer"]
        if r["batch"] != 64:
            continue
        if r["model"] in RATIO_TARGETS and p:
            ratio = m["median"] / p["median"]
            t = RATIO_TARGETS[r["model"]]
            L.append("| %s migc/peer <= %.2f | %.3f | %s |" % (
                r["model"], t, ratio, "yes" if ratio <= t else "no (%.1fx too slow)" % (ratio / t)))
        if r["model"] == "infogan_mnist":
            at = m["median"] / m["attainable_ms"]
            L.append("| %s within %.1fx of attainable | %.2fx | %s |" % (
                r["model"], ATTAINABLE_TARGET, at,
                "yes" if at <= ATTAINABLE_TARGET else "no"))
        c = m["compile_ms"] / 1e3
        L.append("| %s JIT compile < %.1f s | %.3f s | %s |" % (
            r["model"], COMPILE_TARGET_S, c, "yes" if c < COMPILE_TARGET_S else "no"))
        fs = m["first_step_s"]
        L.append("| %s first step within %.0f s of start | %.2f s | %s |" % (
            r["model"], FIRST_STEP_TARGET_S, fs, "yes" if fs <= FIRST_STEP_TARGET_S else "no"))
        if p:
            rr = m["rss_mb"] / p["rss_mb"]
            L.append("| %s peak RSS <= %.1fx peer | %.2fx | %s |" % (
                r["model"], RSS_TARGET, rr, "yes" if rr <= RSS_TARGET else "no"))
    L.append("")
    L.append("## Shared object (`migc compile`)")
    L.append("")
    if not any(r["so"] for r in rows):
        L.append("Not measured: this migc has no `compile` command.")
        L.append("")
        return "\n".join(L)
    L.append("`migc compile FILE --batch B -o lib.so` once per row (its wall time, the whole "
             "command), then `migc bench --so lib.so` as a third side in the alternation: the "
             "same steps run from the shared object instead of the JIT.")
    L.append("")
    L.append("| model | batch | migc compile s | .so median ms | min | max | .so/peer | "
             ".so/JIT | first step s | peak RSS MB | RSS .so/peer |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        o, m, p = r["so"], r["migc"], r["peer"]
        if not o:
            continue
        L.append("| %s | %d | %.2f | %s | %s | %s | %s | %.3f | %.2f | %.0f | %s |" % (
            r["model"], r["batch"], o["compile_s"], fmt_ms(o["median"]), fmt_ms(o["min"]),
            fmt_ms(o["max"]), "%.3f" % (o["median"] / p["median"]) if p else "-",
            o["median"] / m["median"], o["first_step_s"], o["rss_mb"],
            "%.2f" % (o["rss_mb"] / p["rss_mb"]) if p else "-"))
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
