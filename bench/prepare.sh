#!/usr/bin/env bash
# What bench/run.sh and bench/quality.sh do before measuring anything: install
# python3-torch for the peer (scripts/install-deps.sh --bench; a no-op once it is
# there, so it matters only on a fresh machine, after scripts/demo.sh) and bring build/
# up to date. Their reports name the checked-out commit: timing a binary older than the
# tree would credit one commit with another's numbers.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/install-deps.sh" --bench >&2
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
