#!/usr/bin/env bash
# examples/python/migc.py, the ctypes binding, tested like the C host (so.sh): on
# infogan_mlp at batch 16 and real MNIST,
# - the model's tables: name, batch, inputs, functions, every variable as a numpy view
#   of the live state (a write through it is a write to the state);
# - five steps on the binding's data batches give migc train's losses, and the saved
#   checkpoint is migc train's, byte for byte; migc eval reads it;
# - generate and encode give arrays of their outputs' shapes, the same images for the
#   same latents; latents given by name change the step;
# - failures raise migc.Error with the status and the library's message;
# - the example in examples/README.md runs as written.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
model=$root/models/infogan_mlp.mig
"$migc" compile "$model" --batch 16 -o libmlp.so >c.log 2>&1 || { echo "FAIL: compile: $(cat c.log)"; exit 1; }
"$migc" train "$model" --batch 16 --steps 5 --save-every 5 --log-every 1 --threads 1 --out jit >jit.log 2>&1 \
  || { echo "FAIL: migc train: $(cat jit.log)"; exit 1; }
out=$(PYTHONPATH="$root/examples/python" /usr/bin/python3 - <<'PY' 2>&1
import csv, numpy as np, migc
m = migc.Model("./libmlp.so", seed=1, threads=1)
print("model", m.name, m.batch, m.step, m.seed, len(m.inputs), sorted(m.functions))
kinds = m.variable_kinds()
v = m.variables
print("params", sum(a.size for n, a in v.items() if kinds[n] == "param"), len(v) == len(kinds))
w = v["G.dense0.weight"]
state = m.state
old = float(w[0, 0]); w[0, 0] = 123.0
print("view", w.shape, state[np.flatnonzero(state == 123.0)].size == 1, float(m.variables["G.dense0.weight"][0, 0]))
w[0, 0] = old
data = m.data("mnist", data_dir="data")
print("data", data.count, data.labelled, data.shape)
rows = list(csv.reader(open("jit/metrics.csv")))
same = []
for step in range(5):
    images, labels = data.batch(m.step)
    losses = m.train_step(images)
    want = dict(zip(rows[0][2:], rows[step + 1][2:]))
    same.append(all("%.6g" % losses[k] == want[k] for k in want))
print("losses", same, m.step)
m.save("py.safetensors")
img = m.generate()
print("generate", img.shape, img.dtype, bool(((img >= 0) & (img <= 1)).all()))
lat = m.draw("generate")
print("same latents", np.array_equal(m.generate(*lat), m.generate(*lat)))
outs = m.encode(img)
print("encode", [o.shape for o in outs])
try:
    m.load("nowhere.safetensors")
except migc.Error as e:
    print("error", e.status, e.message)
try:
    m.train_step(images, q=np.zeros(3))
except migc.Error as e:
    print("error", e.status, e.message)
z = np.zeros((16, 16), np.float32)
print("named latent", m.train_step(images, z=z) != m.train_step(images), m.step)
PY
)
line() { grep "^$1 " <<<"$out"; }
[ "$(line model)" = "model infogan_mlp 16 0 1 4 ['encode', 'generate', 'train_step']" ] && ok || bad "tables: $out"
[ "$(line params)" = "params 481245 True" ] && ok || bad "parameters: $(line params)"
[ "$(line view)" = "view (128, 28) True 123.0" ] && ok || bad "variables as views: $(line view)"
[ "$(line data)" = "data 60000 True (16, 1, 28, 28)" ] && ok || bad "data: $(line data)"
[ "$(line losses)" = "losses [True, True, True, True, True] 5" ] && ok || bad "losses against migc train: $out"
cmp -s py.safetensors jit/checkpoints/step-00000005.safetensors && ok || bad "the checkpoint differs from migc train's"
[ "$(line generate)" = "generate (16, 1, 28, 28) float32 True" ] && ok || bad "generate: $(line generate)"
[ "$(line "same latents")" = "same latents True" ] && ok || bad "generate with given latents"
[ "$(line encode)" = "encode [(16, 10), (16, 2)]" ] && ok || bad "encode: $(line encode)"
grep -q "^error 3 nowhere.safetensors: cannot open" <<<"$out" && ok || bad "load error: $out"
grep -q "^error 1 train_step has no latent input q$" <<<"$out" && ok || bad "unknown latent: $out"
[ "$(line "named latent")" = "named latent True 7" ] && ok || bad "latents by name: $(line "named latent")"
"$migc" eval py.safetensors --batches 1 --draws 0 >e.log 2>&1 && grep -q "^matched accuracy: " e.log && ok || bad "migc eval of the binding's checkpoint: $(cat e.log)"
# the example of examples/README.md, as written there
mkdir build && cp libmlp.so build/ && ln -s "$root/examples" examples
sed -n '/^```python$/,/^```$/p' "$root/examples/README.md" | sed '1d;$d' >readme_example.py
[ -s readme_example.py ] && /usr/bin/python3 readme_example.py >ex.log 2>&1 && [ -f mlp.safetensors ] \
  && ok || bad "examples/README.md's Python example: $(cat ex.log)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
