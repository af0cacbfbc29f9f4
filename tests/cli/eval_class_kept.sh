#!/usr/bin/env bash
# migc eval's class keeping: for each continuous code element, the share of migc
# sample's sweep images (rows: the values of c, 10 columns from -2 to 2, --draws draws
# of the other latents per row, the first the figure's) whose value of c Q finds most
# likely is the row's. Checked on infogan_mlp after 300 steps (2 s): in [0, 1], a whole
# number of images out of 10 x 10 x draws, the same on every run, printed alike as
# text and JSON; and with --draws 1 it is what Q, computed here with numpy from the
# checkpoint's weights, says of the images of migc sample's figures (--grid OUT.npy).
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
"$migc" train "$root/models/infogan_mlp.mig" --steps 300 --log-every 100 --sample-every 100000 \
  --out r >/dev/null 2>&1 || { echo "FAIL: training the run to evaluate"; exit 1; }

"$migc" eval r --json >a.json 2>/dev/null && "$migc" eval r --json >b.json 2>/dev/null \
  && "$migc" eval r >a.txt 2>/dev/null || bad "eval"
cmp -s a.json b.json && ok || bad "two evals differ: $(cat a.json b.json)"
check=$(/usr/bin/python3 - a.json a.txt <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
txt = open(sys.argv[2]).read()
kept, n = j["class_kept"], j["class_kept_images"]
shown = dict(re.findall(r"^class kept along (\S+): (\S+) of 1000 images \(Q's c is the row's; -2 to 2, 10 draws per row\)$", txt, re.M))
print(sorted(kept), n,
      all(0 <= v <= 1 and abs(v * n - round(v * n)) < 1e-9 for v in kept.values()),
      sorted(shown) == sorted(kept) and all(shown[k] == "%.4f" % v for k, v in kept.items()))
PY
)
[ "$check" = "['s[0]', 's[1]'] 1000 True True" ] && ok || bad "class keeping: $check; $(cat a.txt)"

# One draw per row: exactly migc sample's figure for each element, whose images
# sample --grid OUT.npy writes as they are.
"$migc" eval r --json --draws 1 >one.json 2>/dev/null || bad "eval --draws 1"
for d in 0 1; do
  "$migc" sample r --vary "s[$d]" --grid s$d.npy >/dev/null 2>&1 || bad "sample --vary s[$d] --grid s$d.npy"
done
check=$(/usr/bin/python3 - one.json r/checkpoints/step-00000300.safetensors <<'PY'
import json, struct, sys
import numpy as np

def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__")
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             dtype="<f4").reshape(v["shape"]).astype(np.float64) for k, v in h.items()}

w = tensors(sys.argv[2])
dense = lambda x, name: x @ w[name + ".weight"].T + w[name + ".bias"]
lrelu = lambda x: np.where(x > 0, x, 0.2 * x)
kept = json.load(open(sys.argv[1]))["class_kept"]
out = []
for d in (0, 1):
    cells = np.load("s%d.npy" % d)
    assert cells.shape == (100, 1, 28, 28) and cells.dtype == np.float32
    f = lrelu(dense(lrelu(dense(cells.reshape(100, 784), "body.dense0")), "body.dense1"))  # body
    logits = dense(lrelu(dense(f, "Q.dense0")), "Q.dense1")                                 # Q's c head
    top = np.sort(logits, axis=1)
    unsure = int(np.sum(top[:, -1] - top[:, -2] < 1e-4))  # float32 (migc) against float64 (here)
    same = int(np.sum(np.argmax(logits, axis=1) == np.arange(100) // 10))
    out.append(abs(kept["s[%d]" % d] * 100 - same) <= unsure <= 2)
print(out)
PY
)
[ "$check" = "[True, True]" ] && ok || bad "against Q on migc sample's figures: $check; $(cat one.json)"
"$migc" eval r --draws 0 >none.txt 2>&1 && ! grep -q "class kept" none.txt && ok || bad "--draws 0: $(cat none.txt)"
err=$("$migc" eval r --draws -1 2>&1); st=$?
[ $st -eq 2 ] && grep -q "\-\-draws needs a whole number from 0 to 10000" <<<"$err" && ok || bad "--draws -1: $st $err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
