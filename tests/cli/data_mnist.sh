#!/usr/bin/env bash
# ctest: the MNIST files that scripts/fetch-data.sh makes, and the converter behind them.
#   tests/cli/data_mnist.sh PATH/TO/migc REPO_ROOT
# Checks data/mnist/* (sizes, IDX headers, every label in both splits), that converting
# twice gives identical bytes and the same bytes as data/mnist, and that bad input makes
# mnist-json2idx exit 1 naming the bad file.
set -euo pipefail

MIGC=${1:?usage: data_mnist.sh PATH/TO/migc REPO_ROOT}
ROOT=${2:?usage: data_mnist.sh PATH/TO/migc REPO_ROOT}
TOOL=$(dirname "$MIGC")/mnist-json2idx
DATA=$ROOT/data/mnist
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The four files and their sizes: a header, then one byte a pixel or label.
declare -A SIZE=(
  [train-images-idx3-ubyte]=$((16 + 9000 * 784))
  [train-labels-idx1-ubyte]=$((8 + 9000))
  [t10k-images-idx3-ubyte]=$((16 + 1000 * 784))
  [t10k-labels-idx1-ubyte]=$((8 + 1000))
)
# The expected header of each, as 32-bit big-endian words in hex.
declare -A HEADER=(
  [train-images-idx3-ubyte]="00000803 00002328 0000001c 0000001c"
  [train-labels-idx1-ubyte]="00000801 00002328"
  [t10k-images-idx3-ubyte]="00000803 000003e8 0000001c 0000001c"
  [t10k-labels-idx1-ubyte]="00000801 000003e8"
)

# Prints the first n bytes of a file as space-separated 32-bit hex words.
header_words() {
  head -c "$2" -- "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/.\{8\}/& /g; s/ $//'
}

check_present() {
  local f missing=0
  for f in "${!SIZE[@]}"; do [[ -f $DATA/$f ]] || missing=1; done
  if ((missing)) || [[ ! -d $DATA/json ]]; then
    echo "FAIL: $DATA is missing or incomplete: run scripts/fetch-data.sh" >&2
    exit 1
  fi
  [[ -x $TOOL ]] || { echo "FAIL: no converter at $TOOL: build target mnist-json2idx" >&2; exit 1; }
}

check_sizes_and_headers() {
  local f size words expected
  for f in "${!SIZE[@]}"; do
    read -ra expected <<<"${HEADER[$f]}"
    size=$(stat -c %s "$DATA/$f")
    [[ $size -eq ${SIZE[$f]} ]] || fail "$f is $size bytes, expected ${SIZE[$f]}"
    words=$(header_words "$DATA/$f" $((${#expected[@]} * 4)))
    [[ $words == "${HEADER[$f]}" ]] || fail "$f header is '$words', expected '${HEADER[$f]}'"
  done
}

# Every digit 0-9 appears in both splits, and nothing else does.
check_labels() {
  local f seen
  for f in train-labels-idx1-ubyte t10k-labels-idx1-ubyte; do
    seen=$(tail -c +9 -- "$DATA/$f" | od -An -v -tu1 | tr -s ' ' '\n' | sed '/^$/d' | sort -un |
           tr '\n' ' ')
    [[ $seen == "0 1 2 3 4 5 6 7 8 9 " ]] || fail "$f has labels '$seen', expected each of 0-9"
  done
}

# Two conversions of the same input agree byte for byte, and with data/mnist.
check_determinism() {
  local f
  mkdir -p "$TMP/a" "$TMP/b"
  "$TOOL" "$DATA/json" "$TMP/a" || { fail "converter failed on $DATA/json"; return; }
  "$TOOL" "$DATA/json" "$TMP/b" --test 1000 --seed 20161205 || { fail "second run failed"; return; }
  for f in "${!SIZE[@]}"; do
    cmp -s "$TMP/a/$f" "$TMP/b/$f" || fail "$f differs between two runs of the converter"
    cmp -s "$TMP/a/$f" "$DATA/$f" ||
      fail "$DATA/$f is not what the converter makes now: run scripts/fetch-data.sh"
  done
  # A different seed must give a different split (the seed is really used).
  mkdir -p "$TMP/c"
  "$TOOL" "$DATA/json" "$TMP/c" --seed 1 || { fail "converter failed with --seed 1"; return; }
  ! cmp -s "$TMP/a/t10k-labels-idx1-ubyte" "$TMP/c/t10k-labels-idx1-ubyte" ||
    fail "--seed 1 gives the same split as the default seed"
}

# Writes SRC/0.json .. 9.json, one all-zero image each: small valid input.
make_small_input() {
  local dir=$1 d zeros
  mkdir -p "$dir"
  zeros=$(printf '0,%.0s' $(seq 783))0
  for d in 0 1 2 3 4 5 6 7 8 9; do echo "{\"data\":[$zeros]}" > "$dir/$d.json"; done
}

# Runs the converter on bad input: it must exit 1 and name the bad file.
expect_error() {
  local what=$1 dir=$2 file=$3 rc=0 out
  out=$("$TOOL" "$dir" "$TMP/out" --test 2 2>&1) || rc=$?
  if [[ $rc -ne 1 ]]; then
    fail "$what: converter exited $rc, expected 1"
  elif [[ $out != *"$file"* ]]; then
    fail "$what: message does not name $file: $out"
  fi
}

check_errors() {
  mkdir -p "$TMP/out"
  make_small_input "$TMP/good"
  "$TOOL" "$TMP/good" "$TMP/out" --test 2 || fail "converter failed on small valid input"
  [[ $(stat -c %s "$TMP/out/train-images-idx3-ubyte") -eq $((16 + 8 * 784)) ]] ||
    fail "small input: train images file has the wrong size"

  make_small_input "$TMP/malformed"
  echo '{"data":[0.5, 0.25,' > "$TMP/malformed/3.json"
  expect_error "malformed JSON" "$TMP/malformed" 3.json

  make_small_input "$TMP/range"
  sed -i 's/^{"data":\[0,/{"data":[1.5,/' "$TMP/range/5.json"
  expect_error "value out of [0,1]" "$TMP/range" 5.json

  make_small_input "$TMP/count"
  echo '{"data":[0,0,0]}' > "$TMP/count/7.json"
  expect_error "not 784 values an image" "$TMP/count" 7.json

  make_small_input "$TMP/missing"
  rm "$TMP/missing/9.json"
  expect_error "missing file" "$TMP/missing" 9.json
}

check_present
check_sizes_and_headers
check_labels
check_determinism
check_errors
if ((failures)); then
  echo "data_mnist: $failures check(s) failed" >&2
  exit 1
fi
echo "data_mnist: all checks passed"
