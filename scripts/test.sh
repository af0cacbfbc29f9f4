#!/usr/bin/env bash
# Builds migc and runs every test, installing what is missing first.
#
#   scripts/test.sh              build/       RelWithDebInfo, warnings are errors
#   scripts/test.sh --sanitize   build-asan/  Debug (-O1) with AddressSanitizer + UBSan
#
# Safe to rerun: install-deps and fetch-data skip what is there, and CMake rebuilds
# only what changed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
  echo "usage: $0 [--sanitize]" >&2
  exit 2
}

# Prints a step's name and, when it is done, how long it took: CI logs show where
# the time goes.
step() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: done in $((SECONDS - start)) s"
}

configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DMIGC_WERROR=ON "$@"
}

main() {
  local build=build cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ctest_args=()
  case ${1:-} in
    "") ;;
    --sanitize)
      build="build-asan"
      # -O1, as AddressSanitizer's documentation advises: the same checks, and the
      # interpreter-heavy tests (test_simplify, test_train_interp) stay far from
      # ctest's timeout on a busy machine, which at -O0 they did not.
      cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DMIGC_SANITIZE=ON "-DCMAKE_C_FLAGS_DEBUG=-g -O1")
      # Leaks fail tests; UB stops the program with a stack trace.
      export ASAN_OPTIONS=detect_leaks=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      # Tests labelled slow (whole-model gradient checks: minutes of interpretation)
      # run in the plain build only; every rule they exercise is also checked under
      # the sanitizers by smaller tests.
      ctest_args=(-LE slow)
      ;;
    *) usage ;;
  esac
  (($# <= 1)) || usage

  step "install dependencies" scripts/install-deps.sh
  step "configure $build/" configure "$build" "${cmake_args[@]}"
  step "build $build/" cmake --build "$build" -j"$(nproc)"
  # The data must come after the build (its converter is built there) and before the
  # tests (some read it). fetch-data.sh exits non-zero with a message if it can't.
  step "fetch data" env MIGC_BUILD_DIR="$build" scripts/fetch-data.sh
  step "test $build/" ctest --test-dir "$build" --output-on-failure -j2 "${ctest_args[@]}"
}

main "$@"
