#!/usr/bin/env bash
# migc's training step against a PyTorch peer of each model, side by side; writes
# bench/results.md. Needs build/migc (scripts/test.sh or cmake) and, for the peer,
# python3-torch (scripts/install-deps.sh --bench). bench/run.sh --help lists options;
# bench/README.md says what is measured and how.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec /usr/bin/python3 "$ROOT/bench/harness.py" "$@"
