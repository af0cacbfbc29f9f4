#!/usr/bin/env bash
# Each tests/diagnostics/NAME.mig is a broken model; `migc check` must exit 1 and
# print exactly tests/diagnostics/NAME.expected (paths relative to the repo root).
# Regenerate the expected files with scripts/update-golden.sh after a deliberate change.
set -u
migc=$1 root=$2
cd "$root" || exit 1
fail=0 pass=0
for f in tests/diagnostics/*.mig; do
  exp=${f%.mig}.expected
  got=$("$migc" check "$f" --color never 2>&1); st=$?
  if [ $st -ne 1 ]; then echo "FAIL: $f: exit $st, expected 1"; fail=$((fail+1)); continue; fi
  if [ ! -f "$exp" ]; then echo "FAIL: $exp is missing"; fail=$((fail+1)); continue; fi
  if diff -u "$exp" <(printf '%s\n' "$got"); then pass=$((pass+1))
  else echo "FAIL: $f differs from $exp"; fail=$((fail+1)); fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
