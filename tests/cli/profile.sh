#!/usr/bin/env bash
# migc bench --profile and migc train --profile: the report's header, its kernel table
# and GEMM shapes, and its numbers against what they must be: one GEMM call per matmul
# node of train_step (counted in migc dump --grad), times that nest (GEMM within the
# kernels within the step), a positive attainable time.
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

# train --profile: the steps after the first, train_step alone (the sample grid's
# generate call at the last step is not counted)
"$migc" train "$model" --batch 8 --steps 3 --sample-every 3 --profile --out r >/dev/null 2>train.txt
st=$?
[ $st -eq 0 ] && grep -q "^migc profile: train_step, mean of 2 steps" train.txt && ok || bad "train --profile: $st $(cat train.txt)"
grep -qE "the step's $matmuls GEMM calls" train.txt && ok || bad "train --profile counts generate's GEMMs: $(cat train.txt)"

echo "profile: $pass passed, $fail failed"
[ $fail -eq 0 ]
