#!/usr/bin/env bash
# Regenerates the golden files the tests compare against: the IR of every model and
# the diagnostics of every broken model. Read the diff before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
migc=build/migc
[ -x "$migc" ] || { echo "build migc first (scripts/test.sh)"; exit 1; }
mkdir -p tests/golden/ir
for f in models/*.mig; do
  "$migc" dump --ir "$f" > "tests/golden/ir/$(basename "$f" .mig).ir"
done
for f in tests/diagnostics/*.mig; do
  "$migc" check "$f" --color never > "${f%.mig}.expected" 2>&1 || true
done
cp ../shared/golden-ops/* tests/golden-ops/ 2>/dev/null || true
git status --short tests/golden tests/diagnostics tests/golden-ops
