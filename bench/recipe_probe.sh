#!/usr/bin/env bash
# One seed of a training recipe, evaluated along the way: the runs behind the recipe
# table of bench/quality.md. Trains MODEL to each step count in turn (the first as a new
# run, the rest resumed, which is bit for bit an uninterrupted run) and after each one
# appends `migc eval`'s matched accuracy on the 10,000 test digits and mi_c to LOG.
#
#   bench/recipe_probe.sh MODEL RUN_DIR SEED "STEPS..." [migc train/eval options...]
#   e.g. bench/recipe_probe.sh models/infogan_mnist.mig runs/p-s1 1 "1000 2000 3000" \
#          --threads 1 -D lambda_s=0.1
#
# LOG is RUN_DIR.log: one line per step count with the training wall time so far
# (seconds, evaluations excluded), the accuracy and mi_c. Several seeds run side by side
# as separate processes (--threads 1 each on this 2-core machine).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIGC=${MIGC:-$ROOT/build/migc}
model=${1:?usage: recipe_probe.sh MODEL RUN_DIR SEED \"STEPS...\" [options]}
run=${2:?run directory}
seed=${3:?seed}
steps=${4:?step counts}
shift 4
log=$run.log
rm -rf "$run" "$log"

train_s=0
for n in $steps; do
  t0=$(date +%s.%N)
  if [[ ! -d $run ]]; then
    "$MIGC" train "$model" --seed "$seed" --steps "$n" --out "$run" --log-every 100 \
      --sample-every 1000000 --save-every 1000000 "$@" 2>>"$run.train.log"
  else
    "$MIGC" train "$model" --resume "$run" --steps "$n" --log-every 100 \
      --sample-every 1000000 --save-every 1000000 "$@" 2>>"$run.train.log"
  fi
  t1=$(date +%s.%N)
  train_s=$(echo "$train_s + $t1 - $t0" | bc)
  out=$("$MIGC" eval "$run" "$@" 2>&1)
  acc=$(sed -n 's/^matched accuracy: \([0-9.]*\) on.*/\1/p' <<<"$out")
  mi=$(sed -n 's/^mi_c: \([-0-9.]*\) nats.*/\1/p' <<<"$out")
  map=$(grep -o 'code value -> label:[^)]*' <<<"$out" || true)
  printf 'seed %s step %s train_s %.0f accuracy %s mi_c %s %s\n' "$seed" "$n" "$train_s" "$acc" "$mi" \
    "$map" >>"$log"
done
