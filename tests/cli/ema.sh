#!/usr/bin/env bash
# A generator's moving average (adam(..., ema=0.99) on the generator's step): the
# checkpoint holds PARAM@gen.ema for each of G's parameters; migc sample --ema and
# migc eval --ema use them (the figure and the estimates change), and say so; a run
# without averages is refused by --ema with what to write.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
sed '/^  step gen(G, Q)/,/with adam/ s/with adam(lr=lr, beta1=0.5)/with adam(lr=lr, beta1=0.5, ema=0.99)/' \
  "$root/models/infogan_mlp.mig" >avg.mig
grep -q 'ema=0.99' avg.mig || { echo "FAIL: avg.mig: $(cat avg.mig)"; exit 1; }
"$migc" train avg.mig --batch 16 --steps 6 --threads 1 --out r >t.log 2>&1 || bad "train: $(cat t.log)"
n=$("$migc" dump --grad avg.mig --batch 16 | grep -c '^  @[^ ]*@gen\.ema  *ema ')
g=$("$migc" dump --grad avg.mig --batch 16 | grep -c '^  @[GQ]\.[^ @]*  *param ')
[ "$n" -gt 0 ] && [ "$n" = "$g" ] && ok || bad "averages: $n, parameters of the gen step's G and Q: $g"
"$migc" sample r --grid plain.npy --threads 1 >/dev/null 2>&1 && "$migc" sample r --ema --grid avg.npy --threads 1 >s.out 2>s.err \
  && ok || bad "sample --ema: $(cat s.err)"
grep -q "parameters replaced by their moving averages" s.err && ok || bad "sample --ema does not say so: $(cat s.err)"
cmp -s plain.npy avg.npy && bad "sample --ema drew the same figure" || ok
"$migc" eval r --ema --batches 1 --draws 0 --json >e1.json 2>/dev/null && "$migc" eval r --batches 1 --draws 0 --json >e0.json 2>/dev/null \
  && ! cmp -s e0.json e1.json && ok || bad "eval --ema: $(cat e1.json)"
"$migc" train "$root/models/infogan_mlp.mig" --batch 16 --steps 1 --threads 1 --out p >/dev/null 2>&1
err=$("$migc" sample p --ema 2>&1); st=$?
[ $st -eq 1 ] && grep -q "migc: --ema: infogan_mlp keeps no moving average; give the steps that train the generator ema=DECAY (adam(..., ema=0.999))" <<<"$err" \
  && ok || bad "--ema without averages: $st $err"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
