#!/usr/bin/env bash
# The demo: installs what is missing, builds build/migc, fetches the data, then runs
# main_job below.
set -euo pipefail
# Say which command failed: set -e alone exits with only that command's own message.
trap 'echo "demo: FAILED (exit $?): $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

prepare() {
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGC_WERROR=ON >/dev/null
  cmake --build build -j"$(nproc)"
  scripts/fetch-data.sh
}

# ==== main_job: what the demo shows. ==================================================
# For now: check every model and print the start of one model's IR. Later issues replace
# this with training. Any failure (a command migc lacks, a model that doesn't check)
# fails the demo: set -e is in force.
main_job() {
  local models=(models/*.mig)
  [[ -e ${models[0]} ]] || { echo "demo: no models/*.mig" >&2; return 1; }
  local m
  for m in "${models[@]}"; do # migc check takes one file at a time
    echo "== migc check $m"
    build/migc check "$m"
  done

  # Captured first: piping into head could kill migc with SIGPIPE, which pipefail
  # would report as a failure.
  local ir
  echo "== migc dump --ir models/infogan_mnist.mig (first 60 lines)"
  ir=$(build/migc dump --ir models/infogan_mnist.mig)
  sed -n 1,60p <<<"$ir"
}
# ==== end of main_job =================================================================

prepare
main_job
