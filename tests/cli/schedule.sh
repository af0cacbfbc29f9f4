#!/usr/bin/env bash
# Learning-rate schedules through the whole tool: infogan_mlp with a cosine schedule
# and warm-up on D's step and a linear one on G's. The IR prints them; the native code
# (JIT) trains to the interpreter's losses (test_elaborate checks the rates themselves
# against their formulas); the checkpoint's step counters follow the updates, so a
# resumed run is the uninterrupted one bit for bit.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
sed -e 's/with adam(lr=lr, beta1=0.5)$/with adam(lr=lr, beta1=0.5, schedule=cosine(10, end=0.1), warmup=3)/' \
    "$root/models/infogan_mlp.mig" >sched.mig
sed -i '0,/schedule=cosine(10, end=0.1), warmup=3)/! s/schedule=cosine(10, end=0.1), warmup=3)/schedule=linear(6))/' sched.mig
[ "$(grep -c 'schedule=' sched.mig)" = 2 ] || { echo "FAIL: sched.mig: $(cat sched.mig)"; exit 1; }
ir=$("$migc" dump --ir sched.mig --batch 8 | grep -o 'with adam(.*)')
[ "$ir" = "with adam(lr=0.001, beta1=0.5, beta2=0.999, eps=1e-08, weight_decay=0, schedule=cosine(10, end=0.1), warmup=3)
with adam(lr=0.001, beta1=0.5, beta2=0.999, eps=1e-08, weight_decay=0, schedule=linear(6, end=0))" ] \
  && ok || bad "the IR's optimizers: $ir"
train() { "$migc" train sched.mig --batch 8 --steps 8 --log-every 1 --threads 1 "$@"; }
train --out jit >jit.log 2>&1 || bad "JIT run: $(cat jit.log)"
train --out interp --backend interp >interp.log 2>&1 || bad "interpreter run: $(cat interp.log)"
paste -d, <(cut -d, -f1,3- jit/metrics.csv | tail -n +2) <(cut -d, -f3- interp/metrics.csv | tail -n +2) >both.csv
awk -F, '{ n = (NF - 1) / 2; for (i = 2; i <= n + 1; i++) { a = $i; b = $(i + n); d = a - b; if (d < 0) d = -d;
             m = a < 0 ? -a : a; if (d > 1e-3 * (m > 1 ? m : 1)) { print "step " $1 ": " a " vs " b; bad = 1 } } }
     END { exit bad }' both.csv && [ "$(wc -l <both.csv)" = 8 ] && ok || bad "JIT and interpreter differ: $(cat both.csv)"
# resumed at step 4 of 8: the same checkpoint bytes as the run that went straight on
"$migc" train sched.mig --batch 8 --steps 4 --save-every 4 --threads 1 --out r >/dev/null 2>&1 \
  && "$migc" train sched.mig --batch 8 --steps 8 --save-every 4 --threads 1 --resume r >/dev/null 2>&1 \
  && "$migc" train sched.mig --batch 8 --steps 8 --save-every 4 --threads 1 --out s >/dev/null 2>&1 || bad "resume runs"
cmp -s r/checkpoints/step-00000008.safetensors s/checkpoints/step-00000008.safetensors && ok \
  || bad "the resumed run differs from the straight one"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
