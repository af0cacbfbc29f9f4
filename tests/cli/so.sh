#!/usr/bin/env bash
# migc compile and its shared objects, end to end on real MNIST (data/ from
# scripts/fetch-data.sh), with infogan_mlp at batch 16:
# - the .so needs only libc, libm, zlib and OpenBLAS, is linked -Bsymbolic, exports only
#   migc_* symbols, and its NAME.h compiles;
# - migc train --so (on 2 threads) gives the JIT's (on 1) metrics and byte-identical
#   checkpoints, and
#   refuses a .so of another program;
# - the example host (examples/train_host) trains the .so to the same checkpoint
#   bytes, and checkpoints pass both ways between it and migc train (resume);
# - refusals: no -o, an unwritable -o, a library migc did not write.
set -u
migc=$1 root=$2
host=$(dirname "$migc")/examples/train_host
model=$root/models/infogan_mlp.mig
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
ln -s "$root/data" data
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "FAIL: no data/mnist: run scripts/fetch-data.sh"; exit 1; }
. "$root/tests/cli_lib.sh"
ckpt() { echo "$1/checkpoints/step-0000000$2.safetensors"; }

"$migc" compile "$model" --batch 16 -o lib/libmlp.so >c.log 2>&1 && bad "compile into a missing directory succeeded"
grep -q "^migc compile: cannot write lib/libmlp.so: lib: No such file or directory$" c.log && ok || bad "compile error names the output: $(cat c.log)"
mkdir lib
"$migc" compile "$model" --batch 16 -o lib/libmlp.so >c.log 2>&1 && ok || bad "compile: $(cat c.log)"
grep -q "migc compile: infogan_mlp (batch 16, program [0-9a-f]\{16\}) -> lib/libmlp.so" c.log && ok \
  || bad "compile summary: $(cat c.log)"
[ -f lib/mlp.h ] && ok || bad "no lib/mlp.h"
needed=$(readelf -d lib/libmlp.so | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
[ "$needed" = "libc.so.6 libm.so.6 libopenblas.so.0 libz.so.1 " ] && ok || bad "NEEDED: $needed"
# bound to itself (-Bsymbolic): a second model in the process cannot interpose its symbols
readelf -d lib/libmlp.so | grep -q '(FLAGS) *SYMBOLIC' && ok || bad "not linked -Bsymbolic: $(readelf -d lib/libmlp.so | grep FLAGS)"
others=$(nm -D --defined-only lib/libmlp.so | awk '{print $3}' | grep -v '^migc_')
[ -z "$others" ] && ok || bad "exports besides migc_*: $others"
nm -D --defined-only lib/libmlp.so | grep -q " T migc_train_step$" && ok || bad "no migc_train_step"
printf '#include "mlp.h"\nint main(void) { return MLP_BATCH == 16 && MLP_VARS > 0 ? 0 : 1; }\n' >h.c
cc -I"$root/runtime" -Ilib h.c -o h && ./h && ok || bad "mlp.h does not compile or is wrong"

# migc train --so against the JIT: same numbers, same checkpoint bytes
train() { "$migc" train "$model" --batch 16 --steps 5 --save-every 1 --keep 10 --log-every 1 "$@"; }
train --out jit >jit.log 2>&1 || bad "JIT run: $(cat jit.log)"
# (the library on 2 threads of its own pool, migc_set_threads: still the same bits)
train --out so --so lib/libmlp.so --threads 2 >so.log 2>&1 && ok || bad "--so run: $(cat so.log)"
grep -q "native code from --so" so.log && ok || bad "--so run does not say so: $(cat so.log)"
[ "$(cut -d, -f1,3- jit/metrics.csv)" = "$(cut -d, -f1,3- so/metrics.csv)" ] && ok \
  || bad "metrics differ: $(cat jit/metrics.csv so/metrics.csv)"
cmp -s "$(ckpt jit 5)" "$(ckpt so 5)" && ok || bad "--so checkpoint differs from the JIT's"
"$migc" train "$model" --batch 8 --steps 1 --so lib/libmlp.so --out x >x.log 2>&1 && bad "--so of another batch accepted"
grep -q "lib/libmlp.so was compiled from another program than .*infogan_mlp.mig (model source, -D or batch differ: its hash [0-9a-f]\{16\}, this run [0-9a-f]\{16\}); compile it again" x.log \
  && ok || bad "--so mismatch message: $(cat x.log)"
"$migc" train "$model" --batch 16 --steps 1 --so /nonexistent/libx.so --out x >x.log 2>&1 && bad "missing --so accepted"
grep -q "cannot load /nonexistent/libx.so" x.log && ok || bad "missing --so message: $(cat x.log)"

# the example host: a fresh run, and checkpoints both ways
"$host" lib/libmlp.so --steps 5 --save h5.safetensors >host.log 2>&1 && ok || bad "host: $(cat host.log)"
grep -q "^infogan_mlp: batch 16, 481245 parameters, data input x, step 0, seed 1$" host.log && ok \
  || bad "host header: $(cat host.log)"
[ "$(grep -c '^step [1-5]  mi_c' host.log)" = 5 ] && ok || bad "host losses: $(cat host.log)"
sed -n 's/^step \([0-9]\)  mi_c \([^ ]*\)  mi_s \([^ ]*\)  disc.loss \([^ ]*\)  gen.loss \(.*\)/\1,\2,\3,\4,\5/p' host.log >host.csv
[ "$(cat host.csv)" = "$(cut -d, -f1,3- jit/metrics.csv | tail -n +2)" ] && ok || bad "host losses differ from migc train's"
cmp -s h5.safetensors "$(ckpt jit 5)" && ok || bad "host checkpoint differs from migc train's"
"$host" lib/libmlp.so --steps 5 --resume "$(ckpt jit 3)" --save r5.safetensors >host2.log 2>&1 && \
  cmp -s r5.safetensors "$(ckpt jit 5)" && ok || bad "host resuming migc train's checkpoint: $(cat host2.log)"
"$host" lib/libmlp.so --steps 3 --save h3.safetensors >/dev/null 2>&1
mkdir -p back/checkpoints && cp h3.safetensors "$(ckpt back 3)"
train --resume back >back.log 2>&1 && cmp -s "$(ckpt back 5)" "$(ckpt jit 5)" && ok \
  || bad "migc train resuming the host's checkpoint: $(cat back.log)"
"$host" lib/libmlp.so --resume missing.safetensors >m.log 2>&1 && bad "host loaded a missing checkpoint"
grep -q "^train_host: missing.safetensors: cannot open: No such file or directory$" m.log && ok || bad "host message: $(cat m.log)"

# refusals
"$migc" compile "$model" >n.log 2>&1; st=$?
[ $st -eq 2 ] && grep -q "say where the shared object goes: -o libNAME.so" n.log && ok || bad "no -o: $st $(cat n.log)"
"$migc" train "$model" --batch 16 --steps 1 --so "$(ckpt jit 5)" --out y >y.log 2>&1 && bad "a non-library accepted"
grep -q "cannot load" y.log && ok || bad "non-library message: $(cat y.log)"
"$migc" train "$model" --batch 16 --steps 1 --so lib/libmlp.so --no-fuse --out y >y.log 2>&1 && bad "--so with --no-fuse accepted"
grep -q "^migc train: --so runs the library as migc compile made it; --no-fuse and --no-memplan change only the JIT's code (leave them or --so out)$" y.log \
  && ok || bad "--so --no-fuse message: $(cat y.log)"
libm=$(cc -print-file-name=libm.so.6)
"$migc" train "$model" --batch 16 --steps 1 --so "$libm" --out y >y.log 2>&1 && bad "libm accepted as a model"
grep -q "was not written by migc compile (no model description)" y.log && ok || bad "libm message: $(cat y.log)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
