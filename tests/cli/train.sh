#!/usr/bin/env bash
# migc train end to end on real MNIST (data/ from scripts/fetch-data.sh), with the
# small all-dense InfoGAN at batch 16: the run's record (metrics, samples,
# checkpoints in standard safetensors), resume bit for bit (also after SIGKILL),
# SIGINT saving a checkpoint, a diverging run stopping at the first non-finite loss,
# and refusals (corrupt checkpoint, another program's checkpoint, bad options).
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
ln -s "$root/data" data
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "FAIL: no data/mnist: run scripts/fetch-data.sh"; exit 1; }
. "$root/tests/cli_lib.sh"
train() { "$migc" train "$model" --batch 16 "$@"; }

# A run of 30 steps and its record.
train --steps 30 --save-every 10 --sample-every 15 --out a >a.log 2>&1; st=$?
[ $st -eq 0 ] && grep -q "done, 30 steps" a.log && ok || bad "train exit $st: $(cat a.log)"
[ "$(wc -l <a/metrics.csv)" -eq 4 ] && head -1 a/metrics.csv | grep -q "^step,seconds,mi_c,mi_s,disc.loss,gen.loss$" \
  && ok || bad "metrics.csv: $(cat a/metrics.csv)"
ls a/checkpoints | tr '\n' ' ' | grep -q "^step-00000010.safetensors step-00000020.safetensors step-00000030.safetensors $" \
  && ok || bad "checkpoints: $(ls a/checkpoints)"
for f in a/samples/step-00000015.png a/samples/step-00000030.png; do
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && ok || bad "$f is not a PNG"
done
# The checkpoint is standard safetensors: read it with nothing but Python's stdlib.
out=$(/usr/bin/python3 - a/checkpoints/step-00000030.safetensors <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h.pop("__metadata__")
w = h["G.dense0.weight"]
lo, hi = w["data_offsets"]
vals = struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi])
print(meta["model"], meta["step"], w["dtype"], w["shape"], len(vals), all(abs(v) < 10 for v in vals))
PY
)
[ "$out" = "infogan_mlp 30 F32 [128, 28] 3584 True" ] && ok || bad "python reads the checkpoint: $out"

# The run directory's missing parents are made.
train --steps 1 --out deep/er/run >/dev/null 2>&1 && [ -d deep/er/run/checkpoints ] && ok || bad "--out deep/er/run"

# Resume: 10 steps, then on to 30, ends byte for byte where the 30-step run ends.
train --steps 10 --save-every 10 --out b >/dev/null 2>&1
train --steps 30 --save-every 10 --sample-every 15 --resume b >b.log 2>&1
grep -q "resuming at step 10" b.log && ok || bad "resume message: $(cat b.log)"
cmp -s a/checkpoints/step-00000030.safetensors b/checkpoints/step-00000030.safetensors && ok \
  || bad "resumed run differs from the uninterrupted one"
[ "$(cut -d, -f1,3- a/metrics.csv)" = "$(cut -d, -f1,3- b/metrics.csv)" ] && ok || bad "resumed metrics differ"

# SIGKILL at a random moment, then resume: the same end state.
# (migc itself in the background, not the train function: $! must be migc's pid)
"$migc" train "$model" --batch 16 --steps 60 --save-every 5 --out c >/dev/null 2>&1 &
pid=$!
sleep 0.$((RANDOM % 6 + 3))
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
train --steps 60 --save-every 5 --out ref >/dev/null 2>&1
if ls c/checkpoints/*.safetensors >/dev/null 2>&1; then
  train --steps 60 --save-every 5 --resume c >/dev/null 2>&1
else
  train --steps 60 --save-every 5 --out c >/dev/null 2>&1   # killed before the first save
fi
cmp -s ref/checkpoints/step-00000060.safetensors c/checkpoints/step-00000060.safetensors && ok \
  || bad "run killed with SIGKILL and resumed differs"
ls c/checkpoints | grep -q tmp && bad "a temporary checkpoint was left behind" || ok

# SIGINT saves and stops cleanly.
"$migc" train "$model" --batch 16 --steps 100000 --save-every 100000 --out d >d.log 2>&1 &
pid=$!
# Only once it trains: a background job starts with SIGINT ignored until migc installs
# its handler, so a SIGINT during a slow compile would be lost and the run go on.
for _ in $(seq 3000); do grep -q "^step " d.log && break; sleep 0.02; done
kill -INT $pid; wait $pid; st=$?
[ $st -eq 0 ] && grep -q "interrupted at step" d.log && ls d/checkpoints/*.safetensors >/dev/null 2>&1 \
  && ok || bad "SIGINT: exit $st, $(tail -2 d.log)"

# A diverging run stops at the first non-finite loss, naming the step and the loss.
train --steps 20 --save-every 1 -D lr=1e6 --out e >e.log 2>&1; st=$?
[ $st -eq 1 ] && grep -Eq "step [0-9]+: [a-z_.]+ is (NaN|infinite); stopping" e.log && ok \
  || bad "divergence: exit $st, $(tail -2 e.log)"

# Native code (the default) and the reference interpreter train alike: the same
# losses after 10 steps up to float summation order.
train --steps 10 --out g --backend interp >/dev/null 2>&1 && train --steps 10 --out h >/dev/null 2>&1
close=$(/usr/bin/python3 -c '
import csv, sys
a = list(csv.DictReader(open("g/metrics.csv")))[-1]; b = list(csv.DictReader(open("h/metrics.csv")))[-1]
print(all(abs(float(a[k]) - float(b[k])) <= 1e-3 * max(1.0, abs(float(a[k]))) for k in a if k not in ("step", "seconds")))')
[ "$close" = "True" ] && ok || bad "interpreter and native code disagree: $(tail -1 g/metrics.csv) vs $(tail -1 h/metrics.csv)"
"$migc" train "$model" --backend gpu >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--backend gpu is a usage error"

# A run is the same bits whatever the number of threads the machine offers.
OPENBLAS_NUM_THREADS=1 train --steps 6 --out t1 >/dev/null 2>&1
OPENBLAS_NUM_THREADS=2 train --steps 6 --out t2 >/dev/null 2>&1
cmp -s t1/checkpoints/step-00000006.safetensors t2/checkpoints/step-00000006.safetensors && ok \
  || bad "the run depends on OPENBLAS_NUM_THREADS"

# Refusals: a corrupt checkpoint, another program's checkpoint, bad options.
cp -r a f && truncate -s 100 f/checkpoints/step-00000030.safetensors
err=$(train --steps 40 --resume f 2>&1); st=$?
[ $st -eq 1 ] && grep -q "f/checkpoints/step-00000030.safetensors" <<<"$err" && ok || bad "corrupt checkpoint: $st $err"
err=$("$migc" train "$model" --batch 8 --steps 40 --resume a 2>&1); st=$?
[ $st -eq 1 ] && grep -q "written by another program" <<<"$err" && ok || bad "other program: $st $err"
err=$(train --steps 40 --resume a --seed 7 2>&1); st=$?
[ $st -eq 1 ] && grep -q "trained with seed 1, not 7" <<<"$err" && ok || bad "seed mismatch: $st $err"
train --steps 0 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--steps 0 is a usage error"
err=$(train --steps 5 --data nowhere.idx 2>&1); st=$?
[ $st -eq 1 ] && grep -q "nowhere.idx" <<<"$err" && ok || bad "missing data: $st $err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
