#!/usr/bin/env bash
# layernorm, instancenorm and groupnorm against PyTorch's definitions (numpy, with the
# biased variance) and, where python3-torch is installed, against torch.nn.functional's
# layer_norm, instance_norm and group_norm: a compiled model's encode on random images,
# with random weights and biases written into the model through the Python binding,
# must give their values to float rounding; gradients check against finite
# differences; misuse gets located errors.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
cat >norms.mig <<'MIG'
model norms
input x : [4, 2, 3] range [-3, 3]
net N(v) {
  return layernorm(v), instancenorm(v), instancenorm(v, affine=1), groupnorm(v, 2, eps=1e-3)
}
train batch 3 {
  a, b, c, d = N(x)
  step s(N) : minimize mean(a * a * x) + mean(c * x) + mean(d * d * x) with sgd(lr=0.1)
}
encode a, b, c, d = N(x)
MIG
"$migc" check norms.mig >c.log 2>&1 && grep -q "1 nets, 64 parameters" c.log && ok || bad "check: $(cat c.log)"
"$migc" compile norms.mig -o libnorms.so >c.log 2>&1 || bad "compile: $(cat c.log)"
check=$(PYTHONPATH="$root/examples/python" /usr/bin/python3 - <<'PY'
import numpy as np, migc
m = migc.Model("./libnorms.so", seed=1)
rng = np.random.default_rng(7)
v = m.variables
for name, a in v.items():
    a[...] = rng.uniform(-2, 2, a.shape)  # weights and biases: not the ones and zeros they start as
x = rng.uniform(-3, 3, (3, 4, 2, 3)).astype(np.float32)
got = m.encode(x)
t = x.astype(np.float64)
p = {n: a.astype(np.float64) for n, a in v.items()}
def norm(y, axes, eps):  # PyTorch's definition: biased variance
    mu = y.mean(axis=axes, keepdims=True)
    return (y - mu) / np.sqrt(((y - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
ch = lambda w: w.reshape(1, 4, 1, 1)
want = [norm(t, (1, 2, 3), 1e-5) * p["N.ln0.weight"] + p["N.ln0.bias"],
        norm(t, (2, 3), 1e-5),
        norm(t, (2, 3), 1e-5) * ch(p["N.in1.weight"]) + ch(p["N.in1.bias"]),
        norm(t.reshape(3, 2, 2, 2, 3), (2, 3, 4), 1e-3).reshape(t.shape) * ch(p["N.gn0.weight"])
        + ch(p["N.gn0.bias"])]
ok = [bool(np.allclose(g, w, rtol=1e-4, atol=1e-5)) for g, w in zip(got, want)]
try:  # and PyTorch itself, where it is installed (not in CI)
    import torch, torch.nn.functional as F
    tt, pt = torch.from_numpy(t), {n: torch.from_numpy(a) for n, a in p.items()}
    ref = [F.layer_norm(tt, (4, 2, 3), pt["N.ln0.weight"], pt["N.ln0.bias"], eps=1e-5),
           F.instance_norm(tt, eps=1e-5),
           F.instance_norm(tt, weight=pt["N.in1.weight"], bias=pt["N.in1.bias"], eps=1e-5),
           F.group_norm(tt, 2, pt["N.gn0.weight"], pt["N.gn0.bias"], eps=1e-3)]
    ok += [bool(np.allclose(g, r.numpy(), rtol=1e-4, atol=1e-5)) for g, r in zip(got, ref)]
except ImportError:
    ok += ok
print(sorted(v), ok)
PY
)
[ "$check" = "['N.gn0.bias', 'N.gn0.weight', 'N.in1.bias', 'N.in1.weight', 'N.ln0.bias', 'N.ln0.weight'] [True, True, True, True, True, True, True, True]" ] \
  && ok || bad "against the definitions and PyTorch: $check"
"$migc" gradcheck norms.mig >g.log 2>&1 && ok || bad "gradcheck: $(cat g.log)"
sed 's/groupnorm(v, 2, eps=1e-3)/groupnorm(v, 3)/' norms.mig >bad.mig
"$migc" check bad.mig >b.log 2>&1; grep -q "^bad.mig:4:81: error: groups must divide the 4 channels, got 3$" b.log \
  && ok || bad "groupnorm with 3 groups of 4 channels: $(cat b.log)"
sed 's/instancenorm(v), /instancenorm(flatten(v)), /' norms.mig >bad2.mig
"$migc" check bad2.mig >b2.log 2>&1; grep -q "^bad2.mig:4:37: error: instancenorm expects a \[C,H,W\] input, got \[24\]$" b2.log \
  && ok || bad "instancenorm of a flat input: $(cat b2.log)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
