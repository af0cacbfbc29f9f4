#!/usr/bin/env bash
# migc's training step against a PyTorch peer of each model, side by side; writes
# bench/results.md. Builds build/migc (as scripts/test.sh does) and, for the peer,
# installs python3-torch (scripts/install-deps.sh --bench): bench/prepare.sh.
# bench/run.sh --help lists options; bench/README.md says what is measured and how.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The smoke run that ctest makes times whatever is installed and built
# (docs/benchmarks.md says why CI does not install torch).
case " $* " in
  *" --smoke "* | *" --help "* | *" -h "*) ;;
  *) "$ROOT/bench/prepare.sh" ;;
esac
exec /usr/bin/python3 "$ROOT/bench/harness.py" "$@"
