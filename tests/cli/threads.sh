#!/usr/bin/env bash
# --threads: a run is the same bits for every thread count. GEMMs and large kernels are
# split into blocks fixed by the shapes (runtime/pool.c, runtime/gemm.c,
# codegen/parallel.c), so runs with 1 and 2 threads give the same metrics and the same
# checkpoint bytes, a run resumed with another count ends where the uninterrupted one
# ends, and a checkpoint records no thread count.
set -u
migc=$1 root=$2
model=$root/models/infogan_mnist.mig
. "$root/tests/cli_lib.sh"
cli_workdir
# infogan_mnist at batch 8: GEMMs split in blocks (M=8 N=6272 K=1024 ...) and Adam's
# updates of the large weights split by elements
train() { "$migc" train "$model" --batch 8 --sample-every 1000 "$@" >/dev/null 2>>log; }
ckpt() { echo "$1/checkpoints/step-0000000$2.safetensors"; }
metrics() { cut -d, -f1,3- "$1/metrics.csv"; } # without the seconds column

train --steps 2 --log-every 1 --threads 1 --out a
train --steps 2 --log-every 1 --threads 2 --out b
[ -s "$(ckpt a 2)" ] && ok || bad "no checkpoint: $(cat log)"
cmp -s "$(ckpt a 2)" "$(ckpt b 2)" && ok || bad "--threads 1 and --threads 2 checkpoints differ"
[ "$(metrics a)" = "$(metrics b)" ] && ok || bad "metrics differ: $(metrics a) / $(metrics b)"
grep -aq '"threads"' "$(ckpt b 2)" && bad "checkpoint records a thread count" || ok

# a run resumed with another count ends where the uninterrupted one ends, and says nothing
train --steps 1 --threads 2 --out c
"$migc" train "$model" --batch 8 --sample-every 1000 --steps 2 --resume c --threads 1 \
  >/dev/null 2>note.log
cmp -s "$(ckpt a 2)" "$(ckpt c 2)" && ok || bad "resumed run differs from the uninterrupted one"
grep -q "note" note.log && bad "resume with another --threads: $(cat note.log)" || ok

# more threads than cores is allowed (the pool takes one per core) and the same bits
train --steps 2 --threads 1024 --out d
cmp -s "$(ckpt a 2)" "$(ckpt d 2)" && ok || bad "--threads 1024 differs"

# without --threads: one thread per CPU the process may run on (its affinity mask)
bench_threads() {
  "$@" "$migc" bench "$root/models/infogan_mlp.mig" --batch 8 --warmup 0 --steps 3 --time 0 2>/dev/null |
    sed -n 's/.*"threads": *\([0-9]*\).*/\1/p'
}
n=$(bench_threads)
[ "$n" = "$(nproc)" ] && ok || bad "default threads $n, expected nproc = $(nproc)"
if command -v taskset >/dev/null; then
  n=$(bench_threads taskset -c 0)
  [ "$n" = 1 ] && ok || bad "default threads under taskset -c 0: $n, expected 1"
fi

"$migc" train "$model" --threads x >/dev/null 2>err.log; st=$?
[ $st -eq 2 ] && grep -q "threads needs a whole number" err.log && ok || bad "--threads x: $st"

echo "threads: $pass passed, $fail failed"
[ $fail -eq 0 ] || cat log
[ $fail -eq 0 ]
