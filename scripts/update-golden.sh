#!/usr/bin/env bash
# Regenerates the golden files the tests compare against: the IR of every model, the
# fused schedule of infogan_mlp (dump --schedule) and
# the diagnostics of every broken model. Read the diff before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
migc=build/migc
[ -x "$migc" ] || { echo "build migc first (scripts/test.sh)"; exit 1; }
mkdir -p tests/golden/ir tests/golden/schedule
for f in models/*.mig; do
  "$migc" dump --ir "$f" > "tests/golden/ir/$(basename "$f" .mig).ir"
done
"$migc" dump --schedule models/infogan_mlp.mig > tests/golden/schedule/infogan_mlp.txt
for f in tests/diagnostics/*.mig; do
  "$migc" check "$f" --color never > "${f%.mig}.expected" 2>&1 || true
done
cp ../shared/golden-ops/* tests/golden-ops/ 2>/dev/null || true
git status --short tests/golden tests/diagnostics tests/golden-ops
