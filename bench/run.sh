#!/usr/bin/env bash
# migc's training step against a PyTorch peer of each model, side by side; writes
# bench/results.md. Builds build/migc (as scripts/test.sh does) and, for the peer,
# installs python3-torch (scripts/install-deps.sh --bench).
# bench/run.sh --help lists options; bench/README.md says what is measured and how.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A real run needs the peer, so on a fresh machine (after scripts/demo.sh) it installs
# python3-torch first; that is a no-op once it is there. The smoke run that ctest makes
# times whatever is installed (docs/benchmarks.md says why CI does not install torch).
# It also brings build/ up to date first: results.md names the checked-out commit, so
# timing a binary older than the tree would credit one commit with another's numbers.
case " $* " in
  *" --smoke "* | *" --help "* | *" -h "*) ;;
  *)
    "$ROOT/scripts/install-deps.sh" --bench >&2
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
    ;;
esac
exec /usr/bin/python3 "$ROOT/bench/harness.py" "$@"
