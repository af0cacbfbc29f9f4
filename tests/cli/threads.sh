#!/usr/bin/env bash
# --threads: a run is the same bits for a given GEMM thread count; a checkpoint records
# the count and a resume without --threads takes it back, so it ends where the
# uninterrupted run ends; a resume that changes it says so.
set -u
migc=$1 root=$2
model=$root/models/infogan_mnist.mig
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
ln -s "$root/data" data
fail=0 pass=0
ok()  { pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
# infogan_mnist at batch 8: GEMMs large enough for OpenBLAS to use both threads
train() { "$migc" train "$model" --batch 8 --sample-every 1000 "$@" >/dev/null 2>>log; }
ckpt() { echo "$1/checkpoints/step-0000000$2.safetensors"; }

train --steps 2 --threads 2 --out a
train --steps 2 --threads 2 --out b
cmp -s "$(ckpt a 2)" "$(ckpt b 2)" && ok || bad "two runs with --threads 2 differ"
grep -aq '"threads":"2"' "$(ckpt a 2)" && ok || bad "checkpoint does not record threads 2"

# resume without --threads: the checkpoint's 2, whatever the machine's default
train --steps 1 --threads 2 --out c
"$migc" train "$model" --batch 8 --sample-every 1000 --steps 2 --resume c --threads 1 \
  >/dev/null 2>note.log
grep -q "was trained with --threads 2; with 1 the rest of the run is not the bits" note.log \
  && ok || bad "changed --threads on resume: $(cat note.log)"
rm -rf c
train --steps 1 --threads 2 --out c
OPENBLAS_NUM_THREADS=1 train --steps 2 --resume c
cmp -s "$(ckpt a 2)" "$(ckpt c 2)" && ok || bad "resumed run differs from the uninterrupted one"

"$migc" train "$model" --threads x >/dev/null 2>err.log; st=$?
[ $st -eq 2 ] && grep -q "threads needs a whole number" err.log && ok || bad "--threads x: $st"

echo "threads: $pass passed, $fail failed"
[ $fail -eq 0 ] || cat log
[ $fail -eq 0 ]
