#!/usr/bin/env bash
# ctest: the standard MNIST files that scripts/fetch-data.sh puts under data/mnist, and
# the script's own check of them.
#   tests/cli/data_mnist.sh PATH/TO/migc REPO_ROOT
# Checks data/mnist/* (sizes, IDX headers, every label in both splits), that
# `fetch-data.sh --check` accepts them, and that it rejects a copy with one byte changed,
# a missing file, and the old 9,000-digit subset, each time naming the file and why.
set -euo pipefail

MIGC=${1:?usage: data_mnist.sh PATH/TO/migc REPO_ROOT}
ROOT=${2:?usage: data_mnist.sh PATH/TO/migc REPO_ROOT}
DATA=$ROOT/data/mnist
FETCH=$ROOT/scripts/fetch-data.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The four files and their sizes: a header, then one byte a pixel or label.
declare -A SIZE=(
  [train-images-idx3-ubyte]=$((16 + 60000 * 784))
  [train-labels-idx1-ubyte]=$((8 + 60000))
  [t10k-images-idx3-ubyte]=$((16 + 10000 * 784))
  [t10k-labels-idx1-ubyte]=$((8 + 10000))
)
# The expected header of each, as 32-bit big-endian words in hex.
declare -A HEADER=(
  [train-images-idx3-ubyte]="00000803 0000ea60 0000001c 0000001c"
  [train-labels-idx1-ubyte]="00000801 0000ea60"
  [t10k-images-idx3-ubyte]="00000803 00002710 0000001c 0000001c"
  [t10k-labels-idx1-ubyte]="00000801 00002710"
)

# Prints the first n bytes of a file as space-separated 32-bit hex words.
header_words() {
  head -c "$2" -- "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/.\{8\}/& /g; s/ $//'
}

check_present() {
  local f
  for f in "${!SIZE[@]}"; do
    [[ -f $DATA/$f ]] || { echo "FAIL: $DATA/$f is missing: run scripts/fetch-data.sh" >&2; exit 1; }
  done
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

# Every digit 0-9 appears in both splits, and nothing else does; the test split's
# first labels are MNIST's well-known 7 2 1 0 4 1 4 9 5 9.
check_labels() {
  local f seen first
  for f in train-labels-idx1-ubyte t10k-labels-idx1-ubyte; do
    seen=$(tail -c +9 -- "$DATA/$f" | od -An -v -tu1 | tr -s ' ' '\n' | sed '/^$/d' | sort -un |
           tr '\n' ' ')
    [[ $seen == "0 1 2 3 4 5 6 7 8 9 " ]] || fail "$f has labels '$seen', expected each of 0-9"
  done
  # od reads the ten bytes itself: `tail | head -c 10` under pipefail failed now and
  # then, when head had exited and tail's next write got SIGPIPE
  first=$(od -An -v -tu1 -j 8 -N 10 -- "$DATA/t10k-labels-idx1-ubyte" | tr -s ' ')
  [[ $first == " 7 2 1 0 4 1 4 9 5 9" ]] || fail "t10k labels begin '$first', expected 7 2 1 0 4 1 4 9 5 9"
}

# Runs fetch-data.sh --check on a data dir; it must exit 1 and say what is wrong.
expect_rejected() {
  local what=$1 dir=$2 want=$3 rc=0 out
  out=$(MIGC_DATA_DIR=$dir "$FETCH" --check 2>&1) || rc=$?
  if [[ $rc -ne 1 ]]; then
    fail "$what: fetch-data.sh --check exited $rc, expected 1: $out"
  elif [[ $out != *"$want"* ]]; then
    fail "$what: message does not say '$want': $out"
  fi
}

check_verification() {
  local out f
  out=$("$FETCH" --check 2>&1) || fail "fetch-data.sh --check rejects data/mnist: $out"
  [[ $out == *"60000 train + 10000 test images"*"sha256 verified"* ]] ||
    fail "fetch-data.sh --check does not report 60000 + 10000 verified images: $out"

  # One pixel changed in a copy: same size, same header, wrong digest.
  mkdir -p "$TMP/flip/mnist"
  for f in "${!SIZE[@]}"; do ln -s "$DATA/$f" "$TMP/flip/mnist/$f"; done
  rm "$TMP/flip/mnist/t10k-images-idx3-ubyte"
  cp "$DATA/t10k-images-idx3-ubyte" "$TMP/flip/mnist/"
  printf '\x01' | dd of="$TMP/flip/mnist/t10k-images-idx3-ubyte" bs=1 seek=5000 conv=notrunc status=none
  expect_rejected "one byte changed" "$TMP/flip" \
    "t10k-images-idx3-ubyte: sha256 $(sha256sum "$TMP/flip/mnist/t10k-images-idx3-ubyte" | cut -d' ' -f1), expected 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 (the canonical MNIST file)"

  mkdir -p "$TMP/missing/mnist"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte; do
    ln -s "$DATA/$f" "$TMP/missing/mnist/$f"
  done
  expect_rejected "a missing file" "$TMP/missing" "t10k-labels-idx1-ubyte: missing"

  # The old 9,000/1,000 subset had valid IDX headers; only the digest tells it apart.
  mkdir -p "$TMP/subset/mnist"
  for f in "${!SIZE[@]}"; do ln -s "$DATA/$f" "$TMP/subset/mnist/$f"; done
  rm "$TMP/subset/mnist/train-labels-idx1-ubyte"
  head -c $((8 + 9000)) "$DATA/train-labels-idx1-ubyte" > "$TMP/subset/mnist/train-labels-idx1-ubyte"
  printf '\x00\x00\x23\x28' | dd of="$TMP/subset/mnist/train-labels-idx1-ubyte" bs=1 seek=4 \
    conv=notrunc status=none
  expect_rejected "a 9,000-label file" "$TMP/subset" "train-labels-idx1-ubyte: sha256"
}

# migc itself reads them: the training split is 60,000 images, the test split 10,000.
check_migc_reads() {
  local out
  out=$("$MIGC" train "$ROOT/models/infogan_mlp.mig" --steps 1 --batch 8 --data-dir "$ROOT/data" \
        --out "$TMP/run" 2>&1) || { fail "migc train on data/mnist failed: $out"; return; }
  [[ $out == *"60000 images from"* ]] || fail "migc train does not say 60000 images: $out"
}

check_present
check_sizes_and_headers
check_labels
check_verification
check_migc_reads
if ((failures)); then
  echo "data_mnist: $failures check(s) failed" >&2
  exit 1
fi
echo "data_mnist: all checks passed"
