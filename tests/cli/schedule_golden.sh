#!/usr/bin/env bash
# `migc dump --schedule models/infogan_mlp.mig` equals tests/golden/schedule/
# infogan_mlp.txt: which ops land in which kernel, what stays in registers, where each
# value lives in the arena, and the --stats summary. A change to fusion or planning shows
# up here as a diff to read; regenerate with scripts/update-golden.sh.
set -u
migc=$1 root=$2
cd "$root" || exit 1
fail=0 pass=0
exp=tests/golden/schedule/infogan_mlp.txt
if diff -u "$exp" <("$migc" dump --schedule models/infogan_mlp.mig 2>&1); then pass=$((pass+1))
else echo "FAIL: migc dump --schedule differs from $exp"; fail=$((fail+1)); fi
# --stats is the summary of the same report
if diff -u <(grep -v '^  kernel ' "$exp") <("$migc" dump --schedule --stats models/infogan_mlp.mig 2>&1)
then pass=$((pass+1)); else echo "FAIL: --stats is not the summary of --schedule"; fail=$((fail+1)); fi
# fusion must have fused something: kernels with several ops, values in registers
if grep -q '(fused):.* reg ' "$exp"; then pass=$((pass+1)); else echo "FAIL: nothing fused"; fail=$((fail+1)); fi
# --no-fuse: one op per kernel, nothing in registers, the same number of nodes
if "$migc" dump --schedule --no-fuse models/infogan_mlp.mig | grep -Eq '\(fused\)| reg( |$)'
then echo "FAIL: --no-fuse still fuses"; fail=$((fail+1)); else pass=$((pass+1)); fi
# --stats goes with --schedule only
out=$("$migc" dump --stats models/infogan_mlp.mig 2>&1)
if [ "$out" = "migc dump: --stats goes with --schedule" ]; then pass=$((pass+1))
else echo "FAIL: dump --stats alone: $out"; fail=$((fail+1)); fi
# migc compile --stats prints the same summary for the program it compiles
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if diff -u <(grep -v '^  kernel ' "$exp") \
     <("$migc" compile models/infogan_mlp.mig --stats -o "$tmp/libmlp.so" 2>/dev/null) &&
   [ -s "$tmp/libmlp.so" ]
then pass=$((pass+1)); else echo "FAIL: migc compile --stats"; fail=$((fail+1)); fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
