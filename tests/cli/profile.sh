#!/usr/bin/env bash
# migc bench --profile and migc train --profile: the report's header, its kernel table
# and GEMM shapes, and its numbers against what they must be: one GEMM call per matmul
# node of train_step (counted in migc dump --grad), times that nest (GEMM within the
# kernels within the step), a positive attainable time, the GEMM-bound time from the
# GEMM work and the measured peak; migc bench --peak's table.
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
. "$root/tests/cli_lib.sh"
cli_workdir

"$migc" bench "$model" --batch 8 --threads 1 --profile --steps 3 --time 0 --warmup 1 >out.json 2>report.txt
matmuls=$("$migc" dump --grad "$model" --batch 8 | awk '/^func /{f=$2} /= matmul/ && f ~ /^train_step/{n++} END{print n}')
out=$(/usr/bin/python3 - out.json "$matmuls" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["gemm_calls"] == int(sys.argv[2]), 0 < d["gemm_ms"] <= d["kernel_ms"] <= d["profiled_step_ms"],
      d["attainable_ms"] > 0 and d["split_alone_ms"] > 0, d["gemm_shapes"] <= d["gemm_calls"])
PY
)
[ "$out" = "True True True True" ] && ok || bad "profile JSON ($matmuls matmul nodes): $out $(cat out.json)"
grep -q "^migc profile: train_step, mean of 3 steps, 1 thread$" report.txt && ok || bad "header: $(head -3 report.txt)"
grep -qE "^  attainable [0-9.]+ ms: the step's $matmuls GEMM calls \([0-9]+ shapes\), each shape timed alone" report.txt \
  && ok || bad "attainable line: $(head -4 report.txt)"
grep -qE "^  the same calls alone as the step makes them \(split over migc's threads\): [0-9.]+ ms$" report.txt \
  && ok || bad "split line: $(head -5 report.txt)"
grep -qE "^ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ .* k[0-9]+\.matmul \(matmul, [0-9]+\)$" report.txt && ok || bad "no matmul row: $(cat report.txt)"
grep -qE "M=8 N=256 K=784 B\^T" report.txt && ok || bad "no GEMM shape of body.dense0: $(cat report.txt)"

# the GEMM-bound time: the step's GEMM work, 2MNK summed over the shapes' calls (the
# table), at the measured peak; OpenBLAS's GFLOP/s per shape as its time says
out=$(/usr/bin/python3 - out.json report.txt <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
rows = re.findall(r"^ +(\d+) +[0-9.]+ +[0-9.]+ +([0-9.]+) +[0-9.]+ +([0-9.]+) +([0-9.]+)  M=(\d+) N=(\d+) K=(\d+)",
                  open(sys.argv[2]).read(), re.M)
work = sum(2 * int(m) * int(n) * int(k) * int(c) for c, _, _, _, m, n, k in rows) / 1e9
gf = [abs(float(g) - 2 * int(m) * int(n) * int(k) * int(c) / (float(ms) * 1e6)) <= 0.05 * float(g) + 0.2
      for c, ms, g, _, m, n, k in rows if float(ms) >= 0.05]  # 3 decimals: 1% or better
print(len(rows) == d["gemm_shapes"], abs(work - d["gemm_gflop"]) <= 1e-3 * work,
      d["peak_gflops"] > 0 and abs(d["gemm_bound_ms"] - 1e3 * d["gemm_gflop"] / d["peak_gflops"]) <= 1e-3 * d["gemm_bound_ms"],
      all(gf) and len(gf) > 0)
PY
)
[ "$out" = "True True True True" ] && ok || bad "GEMM work and bound: $out $(cat out.json) $(cat report.txt)"
grep -qE "^  GEMM-bound [0-9.]+ ms: the step's [0-9.]+ GFLOP of GEMM at this machine's measured fp32 FMA peak, [0-9.]+ GFLOP/s on 1 thread \(migc bench --peak\); step / GEMM-bound = [0-9.]+$" report.txt \
  && ok || bad "GEMM-bound line: $(head -6 report.txt)"

# migc bench --peak: a table of the three peaks, 1 and 2 threads
"$migc" bench --peak --threads 2 >peak.md 2>&1 && ok || bad "bench --peak: $(cat peak.md)"
out=$(grep -cE '^\| (fp32 FMA, AVX-512|fp32 FMA, AVX2|bf16 dot, AVX512_BF16) .* \| ([0-9]+\.[0-9]|not on this CPU) \| ([0-9]+\.[0-9]|not on this CPU) \|$' peak.md)
[ "$out" = 3 ] && grep -q '^| | 1 thread | 2 threads |$' peak.md && ok || bad "peak table: $(cat peak.md)"

# train --profile: the steps after the first, train_step alone (the sample grid's
# generate call at the last step is not counted)
"$migc" train "$model" --batch 8 --steps 3 --sample-every 3 --profile --out r >/dev/null 2>train.txt
st=$?
[ $st -eq 0 ] && grep -q "^migc profile: train_step, mean of 2 steps" train.txt && ok || bad "train --profile: $st $(cat train.txt)"
grep -qE "the step's $matmuls GEMM calls" train.txt && ok || bad "train --profile counts generate's GEMMs: $(cat train.txt)"

echo "profile: $pass passed, $fail failed"
[ $fail -eq 0 ]
