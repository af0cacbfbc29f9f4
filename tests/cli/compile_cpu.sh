#!/usr/bin/env bash
# migc compile --cpu: shared objects for other machines (infogan_mlp at batch 16, real
# MNIST from data/):
# - an unknown CPU is refused with the choices;
# - --cpu x86-64 has no AVX instruction at all (no ymm or zmm register), x86-64-v3 no
#   AVX-512 one, and native uses AVX-512 where this CPU has it; each library's
#   description carries the CPU and its extensions;
# - the x86-64 library trains to the JIT's losses (to float rounding: other vector
#   widths sum in another order);
# - a library needing an extension this CPU lacks (its description edited to ask for
#   AMD's fma4, which no current CPU has) is refused at load with MIGC_E_CPU's
#   sentence, before any of its code runs.
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
. "$root/tests/cli_lib.sh"
cli_workdir
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "FAIL: no data/mnist: run scripts/fetch-data.sh"; exit 1; }

"$migc" compile "$model" --batch 16 --cpu pentium4 -o libx.so >c.log 2>&1; st=$?
[ $st -eq 2 ] && grep -q "^migc compile: --cpu: unknown CPU 'pentium4': use native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4$" c.log \
  && ok || bad "unknown CPU: $st $(cat c.log)"
"$migc" compile "$model" --batch 16 -o libx.so --cpu >c.log 2>&1; st=$?
[ $st -eq 2 ] && grep -q "^migc compile: --cpu: needs a CPU: native, x86-64" c.log && ok || bad "--cpu alone: $st $(cat c.log)"

for cpu in x86-64 x86-64-v2 x86-64-v3 native; do
  "$migc" compile "$model" --batch 16 --cpu $cpu -o lib$cpu.so >c.log 2>&1 || bad "compile --cpu $cpu: $(cat c.log)"
  objdump -d --no-show-raw-insn lib$cpu.so >$cpu.asm
done
grep -q -- "-> libx86-64.so for x86-64 in" c.log || grep -q -- "-> libnative.so for this CPU (native) in" c.log && ok \
  || bad "compile summary: $(cat c.log)"
grep -q '%[yz]mm' x86-64.asm && bad "x86-64 library uses AVX registers" || ok
grep -q '%zmm' x86-64-v3.asm && bad "x86-64-v3 library uses AVX-512 registers" || ok
grep -q '%ymm' x86-64-v3.asm && ok || bad "x86-64-v3 library has no AVX code"
if grep -q avx512f /proc/cpuinfo; then
  grep -q '%zmm' native.asm && ok || bad "native library on an AVX-512 CPU uses no zmm register"
fi
desc() { strings -n 3 "$1" | grep '^cpu [a-z]'; }
[ "$(desc libx86-64.so)" = "cpu x86-64" ] && ok || bad "x86-64 cpu record: $(desc libx86-64.so)"
[ "$(desc libx86-64-v2.so)" = "cpu x86-64-v2 sse3 ssse3 sse4.1 sse4.2 popcnt cx16 sahf" ] && ok \
  || bad "x86-64-v2 cpu record: $(desc libx86-64-v2.so)"
desc libnative.so | grep -q '^cpu [a-z0-9-]* .*\bavx2\b' && ok || bad "native cpu record: $(desc libnative.so)"

# the portable library trains like the JIT
train() { "$migc" train "$model" --batch 16 --steps 3 --log-every 1 --threads 1 "$@"; }
train --out jit >jit.log 2>&1 || bad "JIT run: $(cat jit.log)"
train --out so --so libx86-64.so >so.log 2>&1 && ok || bad "--so x86-64 run: $(cat so.log)"
paste -d, <(cut -d, -f1,3- jit/metrics.csv | tail -n +2) <(cut -d, -f3- so/metrics.csv | tail -n +2) >both.csv
awk -F, '{ n = (NF - 1) / 2; for (i = 2; i <= n + 1; i++) { a = $i; b = $(i + n); d = a - b; if (d < 0) d = -d;
             m = a < 0 ? -a : a; if (d > 1e-4 * (m > 1 ? m : 1)) { print "step " $1 " column " i ": " a " vs " b; bad = 1 } } }
     END { exit bad }' both.csv && [ "$(wc -l <both.csv)" = 3 ] && ok || bad "x86-64 library's losses differ from the JIT's: $(cat both.csv)"

# a library for extensions this CPU lacks is refused before it runs
if grep -qw fma4 /proc/cpuinfo; then
  echo "this CPU has fma4: the refusal is not checked"
else
  /usr/bin/python3 - libx86-64-v2.so libfma4.so <<'EOF' || bad "cannot edit the description"
import sys
b = open(sys.argv[1], 'rb').read()
old = b'\ncpu x86-64-v2 sse3 '
assert b.count(old) == 1
open(sys.argv[2], 'wb').write(b.replace(old, b'\ncpu x86-64-v2 fma4 '))
EOF
  why="infogan_mlp was compiled for CPU x86-64-v2 and needs fma4, which this CPU lacks; compile it again here (migc compile --cpu native) or for an older CPU (--cpu x86-64-v3, or x86-64 for any)"
  train --out f --so ./libfma4.so >f.log 2>&1 && bad "migc train ran a library needing fma4"
  grep -qF "migc train: ./libfma4.so: $why" f.log && ok || bad "migc train's fma4 refusal: $(cat f.log)"
  [ ! -e f/checkpoints ] && ok || bad "the refused run wrote checkpoints"
  # through the C ABI: migc_create (examples/train_host) refuses it with MIGC_E_CPU
  "$(dirname "$migc")/examples/train_host" ./libfma4.so --steps 1 >h.log 2>&1 && bad "the host ran a library needing fma4"
  grep -qF "migc_create: $why" h.log && ok || bad "migc_create's fma4 refusal: $(cat h.log)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
