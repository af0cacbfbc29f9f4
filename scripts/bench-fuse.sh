#!/usr/bin/env bash
# What fusion buys: a model's training step compiled with fusion (the default) and with
# --no-fuse, side by side. Both programs are compiled once into shared objects
# (`migc compile`, the JIT's very code), then `migc bench --so` times each on one fixed
# batch, alternately, REPS times; each run's median step counts. Prints every run, the
# medians of the runs, their ratio, and each side's peak memory. Alternating and
# medians keep a shared machine's noise out of the ratio.
#   scripts/bench-fuse.sh [MODEL] [REPS] [SECONDS]   (defaults: models/infogan_mnist.mig 5 3)
set -euo pipefail
cd "$(dirname "$0")/.."
migc=build/migc
[ -x "$migc" ] || { echo "build migc first (scripts/test.sh)"; exit 1; }
model=${1:-models/infogan_mnist.mig} reps=${2:-5} secs=${3:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$migc" compile "$model" -o "$tmp/libfused.so" 2>/dev/null
"$migc" compile "$model" --no-fuse -o "$tmp/libunfused.so" 2>/dev/null
# one JSON line -> "median_ms peak_kB"
summary() {
  python3 -c 'import json,sys,statistics as s; j=json.loads(sys.stdin.read()); print("%.3f %d" % (s.median(j["steps_ms"]), j["vmhwm_kb"]))'
}
fused=() unfused=()
for r in $(seq 1 "$reps"); do
  for mode in fused unfused; do
    read -r ms kb < <("$migc" bench "$model" --so "$tmp/lib$mode.so" --time "$secs" 2>/dev/null | summary)
    echo "run $r $mode: median step $ms ms, peak memory $kb kB"
    if [ $mode = fused ]; then fused+=("$ms"); else unfused+=("$ms"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mf=$(median "${fused[@]}") mu=$(median "${unfused[@]}")
echo "median: fused $mf ms/step, --no-fuse $mu ms/step, --no-fuse / fused = $(awk -v a="$mu" -v b="$mf" 'BEGIN {printf "%.3f", a/b}')"
