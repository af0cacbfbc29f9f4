#!/usr/bin/env bash
# migc sample and migc eval on a short real run of the small InfoGAN: the figure is a
# PNG of K rows by 10 columns of 28x28 cells; eval prints the MI estimates (mi_c between
# -inf and ln 10, mi_s at most -0.4516) and the matched accuracy on all 10,000 MNIST test images with a
# one-to-one mapping; both reopen the program from the checkpoint alone, and say
# clearly what is wrong when they cannot.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir

"$migc" train "$root/models/infogan_mlp.mig" --batch 16 --steps 20 --out r >/dev/null 2>&1 \
  || { echo "FAIL: training the run to evaluate"; exit 1; }

out=$("$migc" sample r 2>&1); st=$?
png=r/samples/figure-step-00000020.png
[ $st -eq 0 ] && [ -f $png ] && grep -q "10 x 10, rows: the values of c" <<<"$out" && ok || bad "sample: $st $out"
# PNG header: width and height of a 10x10 grid of 28x28 cells with 2-pixel padding
wh=$(/usr/bin/python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(24); print(*struct.unpack(">II", b[16:24]))' $png)
[ "$wh" = "302 302" ] && ok || bad "figure size $wh"
"$migc" sample r --grid fig.png --vary s[1] --seed 3 >/dev/null 2>&1 && [ -f fig.png ] && ok || bad "sample --grid --vary"
cmp -s fig.png $png && bad "--vary s[1] --seed 3 drew the same figure" || ok
err=$("$migc" sample r --vary q[0] 2>&1); st=$?
[ $st -eq 1 ] && grep -q "no continuous latent or code element" <<<"$err" && ok || bad "--vary q: $st $err"

out=$("$migc" eval r --batches 4 2>&1); st=$?
mi=$(sed -n 's/^mi_c: \([-0-9.]*\) nats on 64 generated images (at most ln 10 = 2.3026)$/\1/p' <<<"$out")
acc=$(sed -n 's/^matched accuracy: \([0-9.]*\) on 10000 images (code value -> label:.*$/\1/p' <<<"$out")
[ $st -eq 0 ] && [ -n "$mi" ] && [ -n "$acc" ] && ok || bad "eval: $st $out"
/usr/bin/python3 -c "import sys; mi, acc = float('$mi' or 9), float('$acc' or 9); sys.exit(0 if mi <= 2.3026 and 0.1 <= acc <= 1 else 1)" \
  && ok || bad "eval values: mi $mi, accuracy $acc"
m=$(grep -o "code value -> label:.*" <<<"$out" | grep -o -- "->[0-9]" | sort -u | wc -l)
[ "$m" -eq 10 ] && ok || bad "the mapping is not one-to-one: $out"
# the continuous codes' estimate, with its bound: 2 (ln 2 - 0.5 ln(2 pi)) = -0.451583
mis=$(sed -n 's/^mi_s: \([-0-9.]*\) nats on 64 generated images (at most 2 (ln 2 - 0.5 ln(2 pi)) = -0.4516)$/\1/p' <<<"$out")
/usr/bin/python3 -c "import sys; sys.exit(0 if -1e9 < float('$mis' or 9) <= -0.451583 else 1)" && ok || bad "mi_s: $out"

# Each term is recomputed from the encode output that Q's head makes, found by the
# head's source, not by its shape or place: a model whose continuous code has as many
# dimensions as c has values, and whose encode returns Q's heads swapped, measures
# the same as the one that returns them in order (both trained alike, same seed).
sed -e 's/^code   s : uniform(-1, 1) \[2\]/code   s : uniform(-1, 1) [10]/' \
    -e 's/return dense(h, 10), dense(h, 2)/return dense(h, 10), dense(h, 10)/' "$root/models/infogan_mlp.mig" >inorder.mig
sed 's/^encode c_logits, s_mean = Q(body(x))/net S(f) {\n  a, b = Q(f)\n  return b, a\n}\nencode s_mean, c_logits = S(body(x))/' \
  inorder.mig >swapped.mig
for m in inorder swapped; do
  "$migc" train $m.mig --batch 16 --steps 5 --out $m >/dev/null 2>&1 && "$migc" eval $m --json --draws 0 >$m.json 2>/dev/null \
    || bad "train and eval $m.mig"
done
grep -q "^encode s_mean, c_logits = S(body(x))$" swapped.mig && [ -s inorder.json ] \
  && [ "$(grep -o '"mi": {.*"mapping": \[[0-9, ]*\]' inorder.json)" = "$(grep -o '"mi": {.*"mapping": \[[0-9, ]*\]' swapped.json)" ] \
  && ok || bad "encode's outputs swapped: $(cat inorder.json swapped.json)"

err=$("$migc" eval nowhere 2>&1); st=$?
[ $st -eq 1 ] && grep -q "nowhere: neither a run directory nor a checkpoint file" <<<"$err" && ok || bad "eval nowhere: $st $err"
"$migc" train "$root/models/dcgan_fashion.mig" --data fashion --batch 8 --steps 1 --out g >/dev/null 2>&1
err=$("$migc" eval g 2>&1); st=$?
[ $st -eq 1 ] && grep -q "no categorical code that encode predicts" <<<"$err" && ok || bad "eval dcgan: $st $err"
"$migc" sample g >/dev/null 2>&1 && ok || bad "sample of a model without codes"

# eval's data defaults to the test split of what the run trained on (RUN/run.json)
"$migc" train "$root/models/infogan_mlp.mig" --data fashion --batch 8 --steps 2 --out fr >/dev/null 2>&1
grep -q '"data": "fashion"' fr/run.json && grep -q '"seed": 1,' fr/run.json && ok || bad "run.json: $(cat fr/run.json)"
for what in fr fr/checkpoints/step-00000002.safetensors; do
  out=$("$migc" eval $what --batches 1 --draws 0 2>&1)
  grep -q "^data: .*fashion-mnist/t10k-images-idx3-ubyte" <<<"$out" && ok || bad "eval $what of a fashion run: $out"
done
out=$("$migc" eval fr --data mnist-test --batches 1 --draws 0 2>&1)
grep -q "^data: .*/mnist/t10k-images-idx3-ubyte" <<<"$out" && ok || bad "eval --data over run.json: $out"
printf '{"data": ' >fr/run.json
err=$("$migc" eval fr --batches 1 --draws 0 2>&1); st=$?
[ $st -eq 1 ] && grep -q "fr/run.json: not a migc run record (damaged JSON)" <<<"$err" && ok || bad "damaged run.json: $st $err"
rm fr/run.json # a run of older migc: MNIST's test split, as before
out=$("$migc" eval fr --batches 1 --draws 0 2>&1)
grep -q "^data: .*/mnist/t10k-images-idx3-ubyte" <<<"$out" && ok || bad "eval without run.json: $out"
idx=$(ls -d data/mnist/t10k-images-idx3-ubyte* | head -1)
"$migc" train "$root/models/infogan_mlp.mig" --data "$idx" --batch 8 --steps 1 --out pr >/dev/null 2>&1
err=$("$migc" eval pr --batches 1 --draws 0 2>&1); st=$?
[ $st -eq 1 ] && grep -q "pr was trained on $idx, which has no test split known to migc; give --data" <<<"$err" \
  && ok || bad "eval of a run trained on a file: $st $err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
