#!/usr/bin/env bash
# migc sample draws a figure for every kind of code and says what it drew:
# - categorical + continuous (infogan_mlp): rows the code's values, columns the
#   continuous code from -2 to 2;
# - categorical only: columns sweep a latent (not 10 copies of one image);
# - categorical + Bernoulli: every bit off, then each bit on alone;
# - continuous only: rows are 8 draws of the other latents, each its own;
# - no codes (dcgan_fashion): plain samples, each its own draw;
# - a categorical code and no other input: one column.
# Each figure is written as .npy too, and what varies along rows and columns does vary.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
mlp=$root/models/infogan_mlp.mig
# categorical only: s removed
sed -e '/^code   s : /d' -e 's/net G(z, c, s)/net G(z, c)/' -e 's/concat(z, onehot(c), s)/concat(z, onehot(c))/' \
    -e 's/  return dense(h, 10), dense(h, 2)$/  return dense(h, 10)/' -e 's/^  fake = G(z, c, s)$/  fake = G(z, c)/' \
    -e 's/^  c_logits, s_mean = Q(f_fake)$/  c_logits = Q(f_fake)/' -e '/^  mi_s = /d' -e 's/^  report mi_c, mi_s$/  report mi_c/' \
    -e 's/(mi_c + mi_s)/mi_c/' -e 's/^generate image = G(z, c, s)$/generate image = G(z, c)/' \
    -e 's/^encode c_logits, s_mean = Q(body(x))$/encode c_logits = Q(body(x))/' "$mlp" >cat.mig
# categorical + 3 Bernoulli bits instead of s
sed -e 's/^code   s : uniform(-1, 1) \[2\]$/code   s : bernoulli(0.5) [3]/' -e 's/dense(h, 10), dense(h, 2)$/dense(h, 10), dense(h, 3)/' \
    -e 's/info_gaussian(s, s_mean, std=1)/info_bernoulli(s, s_mean)/' "$mlp" >bits.mig
# continuous only: c removed
sed -e '/^code   c : /d' -e 's/net G(z, c, s)/net G(z, s)/' -e 's/concat(z, onehot(c), s)/concat(z, s)/' \
    -e 's/  return dense(h, 10), dense(h, 2)$/  return dense(h, 2)/' -e 's/^  fake = G(z, c, s)$/  fake = G(z, s)/' \
    -e 's/^  c_logits, s_mean = Q(f_fake)$/  s_mean = Q(f_fake)/' -e '/^  mi_c = /d' -e 's/^  report mi_c, mi_s$/  report mi_s/' \
    -e 's/(mi_c + mi_s)/mi_s/' -e 's/^generate image = G(z, c, s)$/generate image = G(z, s)/' \
    -e 's/^encode c_logits, s_mean = Q(body(x))$/encode s_mean = Q(body(x))/' "$mlp" >cont.mig
cp "$mlp" both.mig
cp "$root/models/dcgan_fashion.mig" plain.mig
for m in both cat bits cont plain; do
  data=mnist; [ $m = plain ] && data=fashion
  "$migc" check $m.mig >c.log 2>&1 || { bad "$m.mig does not check: $(cat c.log)"; continue; }
  "$migc" train $m.mig --data $data --batch 16 --steps 2 --threads 1 --out $m >/dev/null 2>&1 || { bad "train $m"; continue; }
  "$migc" sample $m --grid $m.npy --threads 1 >$m.out 2>/dev/null || bad "sample $m: $(cat $m.out)"
done
# a categorical code and nothing else: one column, said so
cat >onlyc.mig <<'MIG'
model onlyc
input x : [1, 28, 28] range [0, 1]
code c : categorical(3)
net G(c) {
  return reshape(sigmoid(dense(onehot(c), 784)), [1, 28, 28])
}
net D(v) {
  return dense(flatten(v), 1)
}
net Q(v) {
  return dense(flatten(v), 3)
}
train batch 4 {
  fake = G(c)
  mi = info_categorical(c, Q(fake))
  step d(D, Q) : minimize bce(D(x), 1) + bce(D(fake), 0) - mi with adam(lr=1e-3)
  step g(G) : minimize bce(D(fake), 1) - mi with adam(lr=1e-3)
}
generate image = G(c)
encode logits = Q(x)
MIG
"$migc" train onlyc.mig --steps 1 --threads 1 --out onlyc >/dev/null 2>&1 && "$migc" sample onlyc >onlyc.out 2>/dev/null \
  || bad "sample onlyc: $(cat onlyc.out)"
line() { sed 's/^[^:]*: //' "$1.out"; }
[ "$(line onlyc)" = "3 x 1, rows: the values of c, columns: one, as generate takes nothing else" ] && ok \
  || bad "onlyc: $(line onlyc)"
[ "$(line both)" = "10 x 10 images in order, rows: the values of c, columns: s[0] from -2 to 2" ] && ok || bad "both: $(line both)"
[ "$(line cat)" = "10 x 10 images in order, rows: the values of c, columns: z[0] from -2 to 2" ] && ok || bad "cat: $(line cat)"
[ "$(line bits)" = "10 x 4 images in order, rows: the values of c, columns: s with every bit off, then each bit on" ] && ok || bad "bits: $(line bits)"
[ "$(line cont)" = "8 x 10 images in order, rows: draws of the other latents, columns: s[0] from -2 to 2" ] && ok || bad "cont: $(line cont)"
[ "$(line plain)" = "2 x 8 images in order, each its own draw of the latents" ] && ok || bad "plain: $(line plain)"
# along each row the images change, and along each column (rows differ)
check=$(/usr/bin/python3 - <<'PY'
import numpy as np
out = []
for name, rows, cols in [("both", 10, 10), ("cat", 10, 10), ("bits", 10, 4), ("cont", 8, 10), ("plain", 2, 8)]:
    g = np.load(name + ".npy").reshape(rows, cols, -1)
    along_rows = all(not np.array_equal(g[r, 0], g[r, c]) for r in range(rows) for c in range(1, cols))
    along_cols = all(not np.array_equal(g[0, c], g[r, c]) for c in range(cols) for r in range(1, rows))
    out.append("%s %s %s" % (name, along_rows, along_cols))
print(", ".join(out))
PY
)
[ "$check" = "both True True, cat True True, bits True True, cont True True, plain True True" ] && ok \
  || bad "figures that do not vary: $check"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
