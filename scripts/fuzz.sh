#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (build-fuzz/: ASan, UBSan and
# libFuzzer's coverage) and runs each for SECONDS (default 20).
#
#   scripts/fuzz.sh [SECONDS] [NAME...]    NAME: frontend, npy, idx, overrides, ...
#   FUZZ_JOBS=2 scripts/fuzz.sh 600        two targets at a time
#   scripts/fuzz.sh --runs 300000 [NAME...] a fixed number of runs from seed 1 and the
#                                           checked-in seeds (CI's smoke test)
#
# Each target starts from its checked-in seeds (tests/fuzz/corpus/NAME) and the
# corpus it grew before (build-fuzz/corpus/NAME, where new inputs go). A crash leaves
# its input in build-fuzz/crashes/NAME/ and fails the script: copy it to
# tests/fuzz/regressions/NAME/ once fixed, and ctest fuzz_replay_NAME keeps it fixed.
# One line per target reports executions, coverage (edges, features) and crashes;
# the whole log is in build-fuzz/logs/NAME.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${MIGC_FUZZ_BUILD:-build-fuzz}
JOBS=${FUZZ_JOBS:-1}

usage() {
  echo "usage: $0 [SECONDS | --runs N] [NAME...]" >&2
  exit 2
}

SECONDS_EACH=20
RUNS=
if [[ ${1:-} == --runs ]]; then
  [[ ${2:-} =~ ^[0-9]+$ ]] || usage
  RUNS=$2
  shift 2
elif (($#)) && [[ $1 =~ ^[0-9]+$ ]]; then
  SECONDS_EACH=$1
  shift
fi
[[ ${1:-} == -* ]] && usage

all_targets() {
  local f
  for f in tests/fuzz/fuzz_*.c; do
    f=${f##*/fuzz_}
    echo "${f%.c}"
  done
}
if (($#)); then TARGETS=("$@"); else mapfile -t TARGETS < <(all_targets); fi
for t in "${TARGETS[@]}"; do
  [[ -f tests/fuzz/fuzz_$t.c ]] || { echo "fuzz: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
done

command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/install-deps.sh)" >&2; exit 1; }
# The build's output (clang's warnings included) goes to a log, shown if it fails.
mkdir -p "$BUILD/logs"
if ! { cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGC_FUZZ=ON &&
       cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}"; } >"$BUILD/logs/build.log" 2>&1; then
  tail -30 "$BUILD/logs/build.log" >&2
  echo "fuzz: the build failed (all of it in $BUILD/logs/build.log)" >&2
  exit 1
fi

# Options for every target; the frontend also gets the language's tokens and room for
# whole model files.
options() {
  local t=$1
  # A random campaign runs for a time and seeds itself; a fixed one (--runs) starts from
  # seed 1 and stops after a count of runs, so that what it tries depends neither on a
  # random seed nor on the machine's speed. (Not bit for bit the same everywhere: the
  # coverage a build reports, and libFuzzer's order among seeds of one size, steer it.)
  # The frontend and the ABI (which trains a model) run about twenty times slower per
  # input than the file readers.
  if [[ -n $RUNS ]]; then
    local runs=$RUNS
    [[ $t == frontend || $t == abi ]] && runs=$((RUNS / 20))
    echo -seed=1 -runs="$runs"
  else
    echo -max_total_time="$SECONDS_EACH"
  fi
  echo -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
  case $t in
    frontend) echo -dict=tests/fuzz/migc.dict -max_len=8192 ;;
    *) echo -max_len=4096 ;;
  esac
}

# Runs one target; prints its summary line; returns nonzero on a crash.
run_target() {
  local t=$1 log="$BUILD/logs/$1.log" corpus="$BUILD/corpus/$1"
  # A fixed campaign starts from the checked-in seeds alone, whatever grew here before.
  if [[ -n $RUNS ]]; then
    corpus="$BUILD/corpus-fixed/$t"
    rm -rf "$corpus"
  fi
  mkdir -p "$corpus" "$BUILD/crashes/$t" "$BUILD/logs"
  local rc=0
  # shellcheck disable=SC2046
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/tests/fuzz/fuzz_$t" $(options "$t") -artifact_prefix="$BUILD/crashes/$t/" \
    "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local runs cov ft
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  local crashes
  crashes=$(find "$BUILD/crashes/$t" -type f | wc -l)
  local budget=${SECONDS_EACH}s
  [[ -n $RUNS ]] && budget="seed 1"
  printf 'fuzz %-12s %6s  %10s runs  cov %6s  ft %6s  corpus %5s  crashes %s%s\n' "$t" \
 "$budget" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$crashes" \
    "$( ((rc == 0)) || echo "  FAILED (exit $rc; see $log)")"
  return "$rc"
}

failed=0
running=0
for t in "${TARGETS[@]}"; do
  if ((JOBS > 1)); then
    run_target "$t" &
    running=$((running + 1))
    if ((running >= JOBS)); then
      wait -n || failed=1
      running=$((running - 1))
    fi
  else
    run_target "$t" || failed=1
  fi
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
