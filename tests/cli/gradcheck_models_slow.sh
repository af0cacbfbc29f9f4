#!/usr/bin/env bash
# Whole-model gradient checks: every parameter tensor of every model in models/,
# analytic (autodiff) against double-precision central differences, must agree to
# 1e-3 relative or better. Run at batch 2 with one single element per tensor besides
# the random direction, to keep CI quick; `migc gradcheck FILE` with its defaults
# (batch 4, two elements) is the fuller check. Labelled slow: the sanitizer run skips
# it (test_grad_fd covers every rule under ASan).
set -u
migc=$1 root=$2
fail=0 pass=0
for f in "$root"/models/*.mig; do
  out=$("$migc" gradcheck "$f" --batch 2 --elements 1 2>&1); st=$?
  last=$(tail -1 <<<"$out")
  if [ $st -eq 0 ] && grep -q "worst relative error .*: ok$" <<<"$last"; then
    pass=$((pass+1)); echo "$(basename "$f"): $last"
  else
    fail=$((fail+1)); echo "FAIL: migc gradcheck $f (exit $st):"; echo "$out"
  fi
done
# A wrong tolerance is a usage error; an unknown step is named; rows come as each tensor
# is checked, after a line on stderr saying how many there are.
"$migc" gradcheck "$root/models/infogan_mlp.mig" --tol 0 >/dev/null 2>&1; [ $? -eq 2 ] && pass=$((pass+1)) || { echo "FAIL: --tol 0"; fail=$((fail+1)); }
err=$("$migc" gradcheck "$root/models/infogan_mlp.mig" --step nope 2>&1); st=$?
[ $st -eq 1 ] && grep -q "no step named 'nope'" <<<"$err" && pass=$((pass+1)) || { echo "FAIL: --step nope: $err"; fail=$((fail+1)); }
out=$("$migc" gradcheck "$root/models/infogan_mlp.mig" --step gen 2>gen.err)
! grep -q "^disc " <<<"$out" && grep -q "^gen " <<<"$out" && pass=$((pass+1)) || { echo "FAIL: --step gen"; fail=$((fail+1)); }
# progress on stderr: the count of tensors ahead (as many as rows), then an estimate
rows=$(grep -c "^gen " <<<"$out")
grep -q "^migc gradcheck: $rows parameter tensors to check; the step and its gradients ran once in double precision in [0-9.]* s$" gen.err \
  && grep -q "^migc gradcheck: the first tensor took [0-9.]* s; about [0-9]* s for all $rows$" gen.err \
  && pass=$((pass+1)) || { echo "FAIL: progress ($rows rows): $(cat gen.err)"; fail=$((fail+1)); }
rm -f gen.err
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
