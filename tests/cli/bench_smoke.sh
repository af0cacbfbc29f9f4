#!/usr/bin/env bash
# bench/run.sh --smoke: one model (infogan_mlp), batch 16, one short run of `migc bench`
# and, when python3-torch is installed, of its PyTorch peer, so the benchmark cannot
# rot. CI installs no torch (scripts/install-deps.sh --bench takes about a minute and
# 600 MB): there the peer is skipped, and this test checks that it says so. Also
# `migc bench`'s JSON against `migc check`, and its option errors.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
model=$root/models/infogan_mlp.mig

# migc bench's JSON: the parameter count migc check prints, as many steps as asked.
json=$("$migc" bench "$model" --batch 8 --threads 1 --warmup 1 --steps 3 --time 0 2>&1)
params=$("$migc" check "$model" | sed -n 's/.* \([0-9]*\) parameters.*/\1/p')
out=$(/usr/bin/python3 - "$json" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
print(d["side"], d["model"], d["batch"], d["threads"], d["parameters"], len(d["steps_ms"]),
      all(t > 0 for t in d["steps_ms"]), d["compile_ms"] > 0, d["vmhwm_kb"] > 0,
      d["first_step_unix"] > 1.6e9)
PY
)
[ "$out" = "migc infogan_mlp 8 1 $params 3 True True True True" ] && ok || bad "migc bench JSON: $out ($json)"

# first_losses: the first step's scalar outputs, the same bits on 1 thread and 2 (the
# harness's --blas own compares them across kernels); blas_core: the kernels in use,
# the pinned ones where the environment pins them.
json2=$("$migc" bench "$model" --batch 8 --threads 2 --warmup 1 --steps 3 --time 0 2>&1)
out=$(/usr/bin/python3 - "$json" "$json2" "${OPENBLAS_CORETYPE:-}" <<'PY'
import json, math, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pin = sys.argv[3]
print(len(a["first_losses"]) >= 2 and all(math.isfinite(x) for x in a["first_losses"]),
      a["first_losses"] == b["first_losses"],
      a["blas_core"] != "" and (not pin or a["blas_core"].lower() == pin.lower()))
PY
)
[ "$out" = "True True True" ] && ok || bad "first_losses/blas_core: $out ($json) ($json2)"

# Option errors: usage (exit 2) with the option named.
"$migc" bench "$model" --threads 0 >/dev/null 2>err.$$; st=$?
[ $st -eq 2 ] && grep -q "threads needs a whole number from 1 to 1024" err.$$ && ok || bad "--threads 0: $st $(cat err.$$)"
"$migc" bench "$model" --time -1 >/dev/null 2>err.$$; st=$?
[ $st -eq 2 ] && grep -q "time needs a number of seconds" err.$$ && ok || bad "--time -1: $st $(cat err.$$)"
rm -f err.$$

# The smoke run of the harness itself.
out=$("$root/bench/run.sh" --smoke --migc "$migc" 2>&1); st=$?
[ $st -eq 0 ] && ok || bad "bench/run.sh --smoke exit $st: $out"
row=$(echo "$out" | grep -E '^infogan_mlp +16 \|')
echo "$row" | grep -qE '^infogan_mlp +16 \| [0-9.]+ \([0-9.]+-[0-9.]+\)' && ok || bad "no migc row: $out"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "$row" | grep -qE '\| +[0-9]+\.[0-9]{3}$' && ok || bad "no migc/peer ratio: $row"
else
  echo "$out" | grep -q "bench: peer skipped: python3-torch is not installed" && ok \
    || bad "peer skipped without saying so: $out"
  echo "bench_smoke: python3-torch is not installed: the PyTorch peer was not run"
fi

echo "bench_smoke: $pass passed, $fail failed"
[ $fail -eq 0 ]
