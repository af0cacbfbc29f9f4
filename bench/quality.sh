#!/usr/bin/env bash
# How fast and how well InfoGAN learns with migc and with its PyTorch peer: trains the
# recipe of models/infogan_mnist.mig (or --model FILE, with -D NAME=VALUE overrides for
# both sides) on MNIST, several seeds per side, evaluating every E steps, and writes
# bench/quality-peer.md: training time to matched accuracy 0.90, final accuracy and mi_c,
# evaluation and wall times, and the latent traversal figures. Installs torch and builds
# build/ first (bench/prepare.sh), as bench/run.sh does.
# bench/quality.sh --help lists options; bench/README.md says what is measured and how.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case " $* " in
  *" --help "* | *" -h "*) ;;
  *) "$ROOT/bench/prepare.sh" ;;
esac
exec /usr/bin/python3 "$ROOT/bench/quality.py" "$@"
