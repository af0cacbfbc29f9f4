#!/usr/bin/env bash
# `migc dump --grad` prints, for every model, the whole training step: every step
# lowered (forward, gradients, optimizer update), the optimizer state it adds, and
# stores of every trained parameter; the IR verifies (the command checks it).
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
for f in "$root"/models/*.mig; do
  out=$("$migc" dump --grad "$f" 2>&1); st=$?
  [ $st -eq 0 ] || { bad "dump --grad $f exits $st: $(head -5 <<<"$out")"; continue; }
  steps=$(grep -c "^block [0-9]*: step " <<<"$out")
  lowered=$(grep -c "^block [0-9]*: step .*(lowered)$" <<<"$out")
  [ "$steps" -ge 1 ] && [ "$steps" -eq "$lowered" ] && ok || bad "$f: $lowered of $steps steps lowered"
  # every parameter is stored by some step, with Adam moments beside it
  for p in $(grep -E "^  @[^ ]+ +param " <<<"$out" | awk '{print substr($1,2)}'); do
    grep -q "store @$p, " <<<"$out" || { bad "$f: $p is never updated"; continue; }
    grep -qE "^  @$p@[a-z_]+\.m " <<<"$out" || bad "$f: $p has no Adam moment"
  done
  ok
done
out=$("$migc" dump --grad "$root/models/infogan_mnist.mig")
grep -q "^  @disc.t .*step" <<<"$out" && grep -q "^  @G.dense0.weight@gen.v " <<<"$out" && ok \
  || bad "infogan_mnist: step counters and moments"
grep -q "conv_grad_w" <<<"$out" && grep -q "batchnorm_grad" <<<"$out" && ok || bad "adjoint ops"
# The pipeline: dce removes nodes (fewer lines), --no-dce keeps them; a pass can be
# named only if it exists.
n_dce=$("$migc" dump --grad "$root/models/infogan_mlp.mig" | wc -l)
n_all=$("$migc" dump --grad --no-dce "$root/models/infogan_mlp.mig" | wc -l)
[ "$n_dce" -gt 0 ] && [ "$n_all" -ge "$n_dce" ] && ok || bad "--no-dce: $n_all lines vs $n_dce"
"$migc" dump --grad --no-autodiff "$root/models/infogan_mlp.mig" | grep -q "(lowered)" && bad "--no-autodiff still lowers" || ok
"$migc" dump --grad --no-frobnicate "$root/models/infogan_mlp.mig" >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--no-frobnicate is a usage error"
# The LLVM IR, before and after optimisation, names the host CPU and features; the
# optimised GEMMs are calls to migc_rt_sgemm and the loops vectorise.
raw=$("$migc" dump --llvm-raw "$root/models/infogan_mlp.mig" 2>&1); st=$?
opt=$("$migc" dump --llvm "$root/models/infogan_mlp.mig" 2>&1); st2=$?
[ $st -eq 0 ] && [ $st2 -eq 0 ] && grep -q "migc_rt_sgemm" <<<"$opt" && grep -q "define " <<<"$raw" && ok \
  || bad "dump --llvm: $st $st2 $(head -3 <<<"$opt")"
grep -Eq "<(4|8|16) x float>" <<<"$opt" && ok || bad "no vector code in the optimised IR"
[ "$raw" != "$opt" ] && ok || bad "--llvm and --llvm-raw print the same"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
