#!/usr/bin/env bash
# A labels input (`input y : [] labels K`): the data set's label of each image of the
# batch, fed by migc train beside the image and given by a host through the ABI.
# - a classifier trained on MNIST through it learns (its cross-entropy falls from
#   ln 10 = 2.30 to under 1 in 200 steps; labels that did not belong to their images
#   could not be learned);
# - the Python binding's step on migc_data_batch's images and labels gives migc train's
#   first loss (to metrics.csv's 6 digits), and train_step without the labels is
#   refused by name;
# - misuse is located: a shape other than [], too few classes, another option, a data
#   set without labels, a label outside [0, K).
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
cat >lab.mig <<'MIG'
model lab
input x : [1, 28, 28] range [0, 1]
input y : [] labels 10
net C(img) {
  return dense(flatten(img), 10)
}
train batch 16 {
  ce = softmax_ce(C(x), y)
  report ce
  step s(C) : minimize ce with adam(lr=1e-3)
}
encode logits = C(x)
MIG
"$migc" train lab.mig --steps 200 --log-every 1 --threads 1 --out r >t.log 2>&1 || bad "train: $(tail -3 t.log)"
last=$(tail -1 r/metrics.csv | cut -d, -f3) first=$(sed -n 2p r/metrics.csv | cut -d, -f3)
/usr/bin/python3 -c "import sys; sys.exit(not (2.0 < $first < 2.6 and $last < 1.0))" && ok \
  || bad "cross-entropy $first at step 1, $last at step 200: the labels are not the images'"
"$migc" dump --ir lab.mig | grep -q '^  y        labels i32\[16\]  *categorical(10)' && ok || bad "dump: $("$migc" dump --ir lab.mig | grep '^  y')"

"$migc" compile lab.mig -o liblab.so >c.log 2>&1 || bad "compile: $(cat c.log)"
out=$(PYTHONPATH="$root/examples/python" /usr/bin/python3 - "$first" <<'PY' 2>&1
import sys, numpy as np, migc
m = migc.Model("./liblab.so", seed=1, threads=1)
print([x["kind"] for x in m.inputs])
d = m.data("mnist", data_dir="data")
images, labels = d.batch(0)
try:
    m.train_step(images)
except migc.Error as e:
    print(str(e))
loss = m.train_step(images, y=labels)["ce"]
print(abs(loss - float(sys.argv[1])) <= 1e-5 * abs(loss), labels.dtype, labels.min() >= 0)
PY
)
want="['data', 'labels']
MIGC_E_ARG: migc_train_step: input y holds the data set's labels of this batch, which are not drawn: give them in latents[1] (migc_data_batch reads them)
True int32 True"
[ "$out" = "$want" ] && ok || bad "binding: $out"

check_error() { # model text, expected first error line
  printf 'model e\n%s\n' "$1" >e.mig
  got=$("$migc" check e.mig 2>&1 | head -1)
  [ "$got" = "$2" ] && ok || bad "check: got '$got', want '$2'"
}
base='latent z : normal(0, 1) [4]
net G(z) {
  return dense(z, 4)
}
train batch 4 {
  step g(G) : minimize mean(G(z)) with sgd(lr=0.1)
}'
check_error "input y : [2] labels 10
$base" "e.mig:2:11: error: a labels input holds one label per sample: declare it [], e.g. input y : [] labels 10"
check_error "input y : [] labels 1
$base" "e.mig:2:21: error: labels K needs 2 <= K <= 1048576 classes"
check_error "input y : [] labels 10, range [0, 1]
$base" "e.mig:2:25: error: a labels input takes no other option"
/usr/bin/python3 -c "import numpy as np; np.save('x.npy', np.zeros((20, 1, 28, 28), np.float32))"
err=$("$migc" train lab.mig --data x.npy --steps 1 --out n 2>&1); st=$?
[ $st -ne 0 ] && grep -q "lab.mig: input y is the data set's labels, but x.npy has none" <<<"$err" && ok || bad "no labels: $st $err"
sed 's/labels 10/labels 5/' lab.mig >five.mig
err=$("$migc" train five.mig --steps 1 --out f 2>&1); st=$?
grep -q "label [5-9] of image [0-9]* is outside input y's \[0, 5)" <<<"$err" && [ $st -ne 0 ] && ok || bad "range: $st $err"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
