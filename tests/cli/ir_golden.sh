#!/usr/bin/env bash
# `migc dump --ir` of every model equals tests/golden/ir/NAME.ir: the printer is
# stable and elaboration does not drift. Regenerate with scripts/update-golden.sh.
set -u
migc=$1 root=$2
cd "$root" || exit 1
fail=0 pass=0
for f in models/*.mig; do
  name=$(basename "$f" .mig)
  exp=tests/golden/ir/$name.ir
  if [ ! -f "$exp" ]; then echo "FAIL: $exp is missing"; fail=$((fail+1)); continue; fi
  if diff -u "$exp" <("$migc" dump --ir "$f" 2>&1); then pass=$((pass+1))
  else echo "FAIL: migc dump --ir $f differs from $exp"; fail=$((fail+1)); fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
