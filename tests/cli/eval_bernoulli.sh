#!/usr/bin/env bash
# info_bernoulli, end to end: a small InfoGAN with three fair Bernoulli bits beside its
# categorical code. migc eval prints their MI estimate with its bound, 3 ln 2; the
# value is checked against one computed independently in Python from the compiled
# library (the same generated batches: eval's latent stream 10, counters 0 and 1, seed
# 1; Q's bit logits from encode; 3 ln 2 minus the bits' summed binary cross-entropy).
# Gradients check against finite differences; misuse gets located errors.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
sed -e 's/^code   s : uniform(-1, 1) \[2\]$/&\ncode   b : bernoulli(0.5) [3]/' \
    -e 's/^net G(z, c, s) {$/net G(z, c, s, b) {/' \
    -e 's/concat(z, onehot(c), s)/concat(z, onehot(c), s, b)/' \
    -e 's/  return dense(h, 10), dense(h, 2)$/  return dense(h, 10), dense(h, 2), dense(h, 3)/' \
    -e 's/^  fake = G(z, c, s)$/  fake = G(z, c, s, b)/' \
    -e 's/^  c_logits, s_mean = Q(f_fake)$/  c_logits, s_mean, b_logits = Q(f_fake)\n  mi_b = info_bernoulli(b, b_logits)/' \
    -e 's/^  report mi_c, mi_s$/  report mi_c, mi_s, mi_b/' \
    -e 's/(mi_c + mi_s)/(mi_c + mi_s + mi_b)/' \
    -e 's/^generate image = G(z, c, s)$/generate image = G(z, c, s, b)/' \
    -e 's/^encode c_logits, s_mean = Q(body(x))$/encode c_logits, s_mean, b_logits = Q(body(x))/' \
    "$root/models/infogan_mlp.mig" >bern.mig
grep -q 'info_bernoulli(b, b_logits)' bern.mig && grep -q 'encode c_logits, s_mean, b_logits' bern.mig && ok \
  || bad "bern.mig was not made: $(cat bern.mig)"
"$migc" train bern.mig --batch 16 --steps 20 --threads 1 --out r >t.log 2>&1 || bad "train: $(cat t.log)"
grep -q "mi_b [-0-9.]* nats (max 2.0794)" t.log && ok || bad "train's mi_b and its bound: $(tail -2 t.log)"
out=$("$migc" eval r --batches 2 --draws 0 2>&1)
grep -q "^mi_b: [-0-9.]* nats on 32 generated images (at most 3 ln 2 = 2.0794)$" <<<"$out" && ok || bad "eval: $out"
"$migc" eval r --batches 2 --draws 0 --json >e.json 2>/dev/null || bad "eval --json"
"$migc" compile bern.mig --batch 16 -o libbern.so >c.log 2>&1 || bad "compile: $(cat c.log)"
check=$(PYTHONPATH="$root/examples/python" /usr/bin/python3 - <<'PY'
import json, math, numpy as np, migc
m = migc.Model("./libbern.so", seed=1)
m.load("r/checkpoints/step-00000020.safetensors")
total = count = right = 0
for it in range(2):
    ins = m.draw("generate", counter=it, stream=10)
    b = ins[[m.inputs[i]["name"] for i in m.functions["generate"]["inputs"]].index("b")].astype(np.float64)
    l = m.encode(m.generate(*ins))[2].astype(np.float64)
    total += (np.maximum(l, 0) - l * b + np.log1p(np.exp(-np.abs(l)))).sum()
    right += ((l > 0) == (b > 0.5)).sum()
    count += l.shape[0]
want = 3 * math.log(2) - total / count
j = json.load(open("e.json"))
print(abs(j["mi"]["mi_b"] - want) <= 1e-4 * max(1, abs(want)), abs(j["mi_bounds"]["mi_b"] - 3 * math.log(2)) < 1e-12,
      abs(j["bit_accuracy"]["b"] - right / (3 * count)) < 1e-12)
PY
)
[ "$check" = "True True True" ] && ok || bad "eval's mi_b and bit accuracy against Python's: $check $(cat e.json)"
grep -q "^bits of b recovered: [0-9.]* of its bits on the generated images (Q's logit's sign)$" <<<"$out" && ok \
  || bad "eval's bits line: $out"
# without a categorical code (c removed): the MI estimates alone, no labels needed
sed -e '/^code   c : /d' -e 's/net G(z, c, s, b)/net G(z, s, b)/' -e 's/concat(z, onehot(c), s, b)/concat(z, s, b)/' \
    -e 's/dense(h, 10), dense(h, 2), dense(h, 3)$/dense(h, 2), dense(h, 3)/' -e 's/G(z, c, s, b)/G(z, s, b)/' \
    -e 's/^  c_logits, s_mean, b_logits = Q(f_fake)$/  s_mean, b_logits = Q(f_fake)/' -e '/^  mi_c = /d' \
    -e 's/report mi_c, mi_s, mi_b/report mi_s, mi_b/' -e 's/(mi_c + mi_s + mi_b)/(mi_s + mi_b)/' \
    -e 's/^encode c_logits, s_mean, b_logits = Q(body(x))$/encode s_mean, b_logits = Q(body(x))/' bern.mig >nocat.mig
"$migc" train nocat.mig --batch 16 --steps 3 --threads 1 --out n >n.log 2>&1 || bad "train nocat: $(cat n.log)"
out=$("$migc" eval n --batches 1 --data /nonexistent 2>&1); st=$?
[ $st -eq 0 ] && grep -q "^mi_b: [-0-9.]* nats on 16 generated images (at most 3 ln 2 = 2.0794)$" <<<"$out" \
  && grep -q "^matched accuracy: not measured: infogan_mlp has no categorical code$" <<<"$out" && ok \
  || bad "eval without a categorical code: $st $out"
"$migc" gradcheck bern.mig --batch 2 --elements 1 >g.log 2>&1 && ok || bad "gradcheck: $(tail -3 g.log)"
# misuse: a code of another prior, logits of another shape
sed 's/info_bernoulli(b, b_logits)/info_bernoulli(c, b_logits)/' bern.mig >bad1.mig
"$migc" check bad1.mig >b1.log 2>&1; grep -q "bad1.mig:[0-9]*:[0-9]*: error: info_bernoulli's first argument must be a code declared with a bernoulli(p) prior" b1.log \
  && ok || bad "info_bernoulli of a categorical code: $(cat b1.log)"
sed 's/info_bernoulli(b, b_logits)/info_bernoulli(b, s_mean)/' bern.mig >bad2.mig
"$migc" check bad2.mig >b2.log 2>&1; grep -q "bad2.mig:[0-9]*:[0-9]*: error: the logits must have the code's shape, \[3\], one per bit; this is \[2\]" b2.log \
  && ok || bad "info_bernoulli's logits of another shape: $(cat b2.log)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
