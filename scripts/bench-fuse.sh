#!/usr/bin/env bash
# What fusion buys: the training step of a model with fusion (the default) and with
# --no-fuse, side by side. Runs `migc train` alternately in both modes, REPS times each,
# and takes from metrics.csv the time per step after the first (compile, first touch of
# the arena and the final checkpoint are outside it); prints every run, the medians and
# their ratio. Alternating and medians keep a shared machine's noise out of the ratio.
#   scripts/bench-fuse.sh [MODEL] [REPS] [STEPS]   (defaults: models/infogan_mnist.mig 5 12)
set -euo pipefail
cd "$(dirname "$0")/.."
migc=build/migc
[ -x "$migc" ] || { echo "build migc first (scripts/test.sh)"; exit 1; }
model=${1:-models/infogan_mnist.mig} reps=${2:-5} steps=${3:-12}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
per_step() { # metrics.csv -> seconds per step from step 1 to the last
  awk -F, 'NR==2 {t1=$2; s1=$1} END {printf "%.4f", ($2-t1)/($1-s1)}' "$1"
}
fused=() unfused=()
for r in $(seq 1 "$reps"); do
  for mode in fused unfused; do
    flag=""
    [ $mode = unfused ] && flag=--no-fuse
    "$migc" train "$model" --steps "$steps" --log-every 1 --save-every "$steps" \
      --sample-every "$steps" --out "$tmp/$mode-$r" $flag 2>/dev/null
    t=$(per_step "$tmp/$mode-$r/metrics.csv")
    echo "run $r $mode: $t s/step"
    if [ $mode = fused ]; then fused+=("$t"); else unfused+=("$t"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mf=$(median "${fused[@]}") mu=$(median "${unfused[@]}")
echo "median: fused $mf s/step, --no-fuse $mu s/step, --no-fuse / fused = $(awk -v a="$mu" -v b="$mf" 'BEGIN {printf "%.3f", a/b}')"
