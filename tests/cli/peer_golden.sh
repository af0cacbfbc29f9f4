#!/usr/bin/env bash
# New layers and gradient penalties against PyTorch without PyTorch:
# tests/golden/peer/NAME holds the first step of NAME's PyTorch peer
# (bench/peer/parity.py --golden: the penalties' gradients through torch.autograd.grad
# with create_graph=True; resnet_fashion's repeat instances, bilinear upsampling and
# maxpool as torch's, on uniform images, --uniform), from migc's seed-1 parameters at
# batch 16: the step's inputs, its outputs, and samples of the
# parameters and of each step's Adam first moment after it. migc's compiled model
# (through the Python binding) takes the same step on the same inputs and must agree:
# - every output (the losses, the penalty, w_dist or the MI terms) to 1e-4 of
#   max(1, |value|): gen.loss follows the critic's first Adam step, in which an element
#   whose gradient is rounding noise (D's last bias, which a Wasserstein loss cannot
#   see) steps by a rounding-determined amount;
# - each first moment, (1 - beta1) times the step's gradient, second-order terms
#   included, at every sampled element to 1e-3 of the tensor's largest moment in the
#   iteration's first step (critic, disc), 1e-2 in the next, which sees the nets after
#   that first update (resnet_fashion: 1e-2 and 3e-2, its peer's golden_tol, as maxpool
#   routes a gradient by comparisons that a rounding can flip);
# - each parameter's sampled elements to 1% of its step's lr, all but 2 of 48 (Adam's
#   first update is lr times the gradient's sign: this checks the lr and the signs).
# Regenerate with: /usr/bin/python3 bench/peer/parity.py --model models/NAME.mig
#   --batch 16 --steps 1 --golden tests/golden/peer/NAME (resnet_fashion: and --uniform)
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
for name in wgan_gp_fashion infogan_r1_mnist resnet_fashion; do
  golden=$root/tests/golden/peer/$name
  if ! "$migc" compile "$root/models/$name.mig" --batch 16 -o "lib$name.so" >c.log 2>&1; then
    bad "$name: compile: $(cat c.log)"; continue
  fi
  out=$(PYTHONPATH="$root/examples/python" /usr/bin/python3 - "$name" "$golden" <<'PY' 2>&1
import json, os, sys
import numpy as np
import migc
name, golden = sys.argv[1], sys.argv[2]
want = json.load(open(os.path.join(golden, "peer.json")))
m = migc.Model("./lib%s.so" % name, seed=1, threads=1)
inputs = {f[:-6]: np.load(os.path.join(golden, f)) for f in os.listdir(golden)
          if f.endswith(".1.npy")}
x = inputs.pop("x")
got = m.train_step(x, **inputs)
problems = []
if sorted(got) != sorted(want["outputs"][0]):
    problems.append("outputs %s, the peer's %s" % (sorted(got), sorted(want["outputs"][0])))
for k, w in want["outputs"][0].items():
    g = got.get(k, float("nan"))
    if not abs(g - w) <= 1e-4 * max(1.0, abs(g), abs(w)):
        problems.append("%s: migc %.7g, PyTorch %.7g" % (k, g, w))
v = m.variables
for p, s in want["params"].items():
    a = v[p].reshape(-1)[np.array(s["index"])]
    off = int((np.abs(a - np.array(s["value"], np.float32)) > 0.01 * s["lr"]).sum())
    if off > 2:
        problems.append("%s: %d of %d sampled elements differ by more than 1%% of lr"
                        % (p, off, len(s["index"])))
for p, s in want["moments"].items():
    a = v[p].reshape(-1)[np.array(s["index"])]
    worst = float(np.abs(a - np.array(s["value"], np.float32)).max()) / s["max"]
    if not worst <= s["tol"]:
        problems.append("%s: sampled elements differ by %.2g of its largest" % (p, worst))
print("%s: %d outputs, %d parameters, %d moments compared; %s" % (
    name, len(want["outputs"][0]), len(want["params"]), len(want["moments"]),
    "; ".join(problems) or "ok"))
PY
)
  if [[ $out == *"compared; ok" ]]; then ok; else bad "$out"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
