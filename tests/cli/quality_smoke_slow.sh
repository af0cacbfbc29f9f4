#!/usr/bin/env bash
# bench/quality.sh's work (bench/quality.py) on one seed of 2 steps, evaluated after
# each, so the quality benchmark cannot rot: the report's rows, numbers in range, the
# figures, -D passed through. migc's side alone where python3-torch is missing (as in
# CI: docs/benchmarks.md, "In CI"); with torch also the peer, the parity check of its
# first steps and its evaluation of migc's checkpoint.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
[ -f data/mnist/t10k-labels-idx1-ubyte ] || { echo "FAIL: no data/mnist: run scripts/fetch-data.sh"; exit 1; }
if /usr/bin/python3 -c "import torch" 2>/dev/null; then sides=migc,peer; else sides=migc; fi
quality() { /usr/bin/python3 "$root/bench/quality.py" --migc "$migc" --data-dir data "$@"; }

quality --sides $sides --seeds 1 --steps 2 --eval-every 1 -D lr_g=5e-4 --out q.md \
  --work work >log 2>&1; st=$?
[ $st -eq 0 ] && grep -q "quality: wrote q.md" log && ok || bad "quality exit $st: $(tail -20 log)"
for side in ${sides//,/ }; do
  row=$(grep "^| $side | 1 | 2 | " q.md)
  [ -n "$row" ] && ok || bad "no finished $side row in q.md: $(cat q.md)"
  # final accuracy in [0.05, 1], mi_c at most ln 10
  /usr/bin/python3 -c "import sys; c = sys.argv[1].split('|'); a, mi = float(c[6]), float(c[7]); sys.exit(0 if 0.05 <= a <= 1 and mi <= 2.3026 else 1)" "$row" \
    && ok || bad "$side's numbers out of range: $row"
  [ "$(grep -c "^| [12] | .*" q.md)" -ge 2 ] && ok || bad "the accuracy-by-step table: $(cat q.md)"
  wh=$(/usr/bin/python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); print(b[:4] == b"\x89PNG", *struct.unpack(">II", b[16:24]))' q/$side-seed1.png 2>&1)
  [ "$wh" = "True 302 302" ] && ok || bad "$side's figure: $wh"
done
grep -q '`models/infogan_mnist.mig` `-D lr_g=5e-4`' q.md && ok || bad "-D not in the report: $(head -12 q.md)"
[ -d work/migc-seed1 ] && ! [ -d work/migc-seed1/checkpoints ] && ok \
  || bad "the run's checkpoints were kept: $(ls -R work | head)"
if [ $sides = migc,peer ]; then
  grep -q "^parity: ok" log && grep -q "^| evaluation | the peer's evaluation of migc's step-1 checkpoint" q.md \
    && ok || bad "parity checks: $(grep parity log) $(grep evaluation q.md)"
else
  err=$(quality --seeds 1 --steps 1 --out - 2>&1); st=$?
  [ $st -eq 2 ] && grep -q "the peer needs python3-torch" <<<"$err" && ok || bad "no torch: $st $err"
fi

# A constant the model does not have stops the benchmark with migc's message.
err=$(quality --sides migc --seeds 1 --steps 1 -D lamda=1 --out - --work w2 2>&1); st=$?
[ $st -ne 0 ] && grep -q "no constant named 'lamda'" <<<"$err" && ok || bad "-D lamda: $st $err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
