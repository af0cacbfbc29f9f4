#!/usr/bin/env bash
# migc train --eval-every N: at every N-th step and the last, the run measures what
# migc eval measures (matched accuracy on the test split, every MI estimate on
# generated images) and writes it to metrics.csv, eval_accuracy and eval_NAME, on
# rows of their own when the step is not a logged one. Each value is the one migc eval
# gives on the checkpoint of that step, and measuring changes nothing in the run: the
# checkpoints and training columns are those of a run without it, also when a run is
# resumed into evaluating. Small: infogan_mlp at batch 16 for 25 steps, and
# infogan_mnist (batchnorm) for 4 steps at batch 8.
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
. "$root/tests/cli_lib.sh"
cli_workdir
train() { "$migc" train "$model" --batch 16 --sample-every 1000 "$@"; }
ckpt() { printf '%s/checkpoints/step-%08d.safetensors' "$1" "$2"; }
training_cols() { cut -d, -f1,3-6 "$1/metrics.csv"; } # step and train_step's outputs

train --steps 25 --eval-every 10 --log-every 7 --save-every 5 --keep 10 --out a >a.log 2>&1; st=$?
[ $st -eq 0 ] && ok || bad "train --eval-every: exit $st: $(cat a.log)"
head -1 a/metrics.csv | grep -qx "step,seconds,mi_c,mi_s,disc.loss,gen.loss,eval_accuracy,eval_mi_c,eval_mi_s" \
  && ok || bad "header: $(head -1 a/metrics.csv)"
# rows at the logged steps (7, 14, 21, 25) and the evaluated ones (10, 20, 25); eval
# cells empty where no evaluation ran
rows=$(tail -n +2 a/metrics.csv | /usr/bin/python3 -c '
import sys
for l in sys.stdin:
    c = l.rstrip("\n").split(",")
    print(c[0], "eval" if all(c[6:9]) else "-" if c[6:9] == ["", "", ""] else "bad", end=" ")')
[ "$rows" = "7 - 10 eval 14 - 20 eval 21 - 25 eval " ] && ok || bad "rows: $rows"
[ "$(grep -c '^eval at step' a.log)" -eq 3 ] && grep -q "^migc train: evaluating every 10 steps on data/mnist/t10k-images-idx3-ubyte" a.log \
  && ok || bad "eval progress: $(cat a.log)"
# Every MI estimate printed comes with the most it can reach: ln 10 = 2.302585 for the
# 10-way code, 2 (ln 2 - 0.5 ln(2 pi)) = -0.451583 for two uniform(-1, 1) codes whose Q
# has std 1.
grep -qx "migc train: MI estimates at most: mi_c <= ln 10 = 2.3026 nats, mi_s <= 2 (ln 2 - 0.5 ln(2 pi)) = -0.4516 nats" a.log \
  && ok || bad "bounds summary: $(cat a.log)"
[ "$(grep -c '^eval at step [0-9]*: .* mi_c -\?[0-9.]* nats (max 2.3026), mi_s -[0-9.]* nats (max -0.4516)$' a.log)" -eq 3 ] \
  && ok || bad "bounds in the eval lines: $(grep '^eval' a.log)"
[ "$(grep -c '^step [0-9]*/25 .* mi_c -\?[0-9.]* nats (max 2.3026)  mi_s -[0-9.]* nats (max -0.4516)  disc.loss [-0-9.]*  gen.loss' a.log)" -eq 4 ] \
  && ok || bad "bounds in the progress lines: $(grep '^step' a.log)"

# Each evaluated row holds what migc eval says of that step's checkpoint: exactly, as
# metrics.csv prints them (%.6g) against eval's JSON, and to the 4 decimals eval's text shows.
for s in 10 20 25; do
  "$migc" eval "$(ckpt a $s)" --json >e$s.json 2>/dev/null && "$migc" eval "$(ckpt a $s)" >e$s.txt 2>/dev/null \
    || bad "migc eval on step $s"
  same=$(/usr/bin/python3 - a/metrics.csv e$s.json e$s.txt $s <<'PY'
import csv, json, re, sys
row = [r for r in csv.DictReader(open(sys.argv[1])) if r["step"] == sys.argv[4]][0]
j = json.load(open(sys.argv[2]))
txt = open(sys.argv[3]).read()
want = {"eval_accuracy": j["accuracy"], "eval_mi_c": j["mi"]["mi_c"], "eval_mi_s": j["mi"]["mi_s"]}
exact = all(row[k] == "%.6g" % v for k, v in want.items())
shown = {"eval_accuracy": re.search(r"^matched accuracy: (\S+)", txt, re.M).group(1),
         "eval_mi_c": re.search(r"^mi_c: (\S+) nats", txt, re.M).group(1),
         "eval_mi_s": re.search(r"^mi_s: (\S+) nats", txt, re.M).group(1)}
printed = all(abs(float(row[k]) - float(v)) <= 0.5e-4 + 1e-6 for k, v in shown.items())
import math
bounds = {"mi_c": math.log(10), "mi_s": 2 * (math.log(2) - 0.5 * math.log(2 * math.pi))}
bounded = all(abs(j["mi_bounds"][k] - b) < 1e-12 and j["mi"][k] <= b for k, b in bounds.items())
print(exact, printed, j["step"] == int(sys.argv[4]), 0 < j["accuracy"] <= 1, bounded)
PY
)
  [ "$same" = "True True True True True" ] && ok || bad "step $s: metrics vs migc eval: $same; $(grep "^$s," a/metrics.csv); $(cat e$s.json)"
done

# Measuring changes nothing: the same checkpoints and training columns as without it.
train --steps 25 --log-every 7 --save-every 5 --keep 10 --out b >/dev/null 2>&1
for s in 10 25; do cmp -s "$(ckpt a $s)" "$(ckpt b $s)" && ok || bad "step $s: --eval-every changed the run"; done
[ "$(training_cols a | grep -v '^10,\|^20,')" = "$(training_cols b)" ] && ok || bad "training columns differ"

# Resumed into evaluating: the kept rows get empty eval cells, the run the same bits and
# the same evaluations as the run that evaluated from the start.
train --steps 15 --log-every 7 --save-every 5 --keep 10 --out c >/dev/null 2>&1
train --steps 25 --eval-every 10 --log-every 7 --save-every 5 --keep 10 --resume c >c.log 2>&1
cmp -s "$(ckpt a 25)" "$(ckpt c 25)" && ok || bad "resumed run with --eval-every differs"
head -1 c/metrics.csv | grep -q ",eval_accuracy,eval_mi_c,eval_mi_s$" && ok || bad "resumed header: $(head -1 c/metrics.csv)"
grep -q "^14,.*,,,$" c/metrics.csv && ok || bad "kept row without eval cells: $(cat c/metrics.csv)"
[ "$(grep '^2[05],' a/metrics.csv | cut -d, -f1,3-)" = "$(grep '^2[05],' c/metrics.csv | cut -d, -f1,3-)" ] \
  && ok || bad "evaluations after resuming differ: $(cat c/metrics.csv)"
# and resumed out of evaluating: the columns stay, empty
train --steps 30 --log-every 7 --resume c >/dev/null 2>&1
[ "$(tail -1 c/metrics.csv | cut -d, -f1,7-)" = "30,,," ] && ok || bad "row without eval: $(tail -1 c/metrics.csv)"

# With batchnorm (infogan_mnist): generate and encode use the running statistics and
# leave them alone, so the run is the same bits, and its evaluations are migc eval's
# (on the first 64 test digits, with their labels, to stay quick).
/usr/bin/python3 - "$root/data/mnist" <<'PY'
import struct, sys
d = sys.argv[1]
img, lab = open(d + "/t10k-images-idx3-ubyte", "rb").read(), open(d + "/t10k-labels-idx1-ubyte", "rb").read()
open("few-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, 64, 28, 28) + img[16:16 + 64 * 784])
open("few-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, 64) + lab[8:8 + 64])
PY
bn() { "$migc" train "$root/models/infogan_mnist.mig" --batch 8 --steps 4 --sample-every 1000 "$@"; }
bn --eval-every 2 --eval-data few-images-idx3-ubyte --out m >/dev/null 2>&1 && bn --out n >/dev/null 2>&1 \
  && cmp -s "$(ckpt m 4)" "$(ckpt n 4)" && ok || bad "infogan_mnist: --eval-every changed the run"
"$migc" eval m --data few-images-idx3-ubyte --json --draws 0 >m.json 2>/dev/null
same=$(/usr/bin/python3 - m/metrics.csv m.json <<'PY'
import csv, json, sys
row = list(csv.DictReader(open(sys.argv[1])))[-1]
j = json.load(open(sys.argv[2]))
print(row["step"], j["images"], [row[k] == "%.6g" % v for k, v in
      [("eval_accuracy", j["accuracy"]), ("eval_mi_c", j["mi"]["mi_c"]), ("eval_mi_s", j["mi"]["mi_s"])]])
PY
)
[ "$same" = "4 64 [True, True, True]" ] && ok || bad "infogan_mnist: metrics vs migc eval: $same; $(cat m/metrics.csv)"

# Fashion-MNIST evaluates on its own test split; other data needs --eval-data.
train --steps 2 --eval-every 2 --data fashion --out f >f.log 2>&1 \
  && grep -q "evaluating every 2 steps on data/fashion-mnist/t10k-images-idx3-ubyte" f.log && ok || bad "fashion: $(cat f.log)"
/usr/bin/python3 - "$root/data/mnist/t10k-images-idx3-ubyte" small-images-idx3-ubyte <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(struct.pack(">IIII", 0x803, 64, 28, 28) + b[16:16 + 64 * 784])
PY
err=$(train --steps 2 --eval-every 1 --data small-images-idx3-ubyte --out g 2>&1); st=$?
[ $st -eq 1 ] && grep -q "\-\-eval-every: small-images-idx3-ubyte has no test split known to migc; give labelled images to evaluate on with --eval-data" <<<"$err" \
  && ok || bad "no default test data: $st $err"
train --steps 2 --eval-every 1 --data small-images-idx3-ubyte --eval-data mnist-test --out g >/dev/null 2>&1 \
  && [ "$(grep -c ',,,$' g/metrics.csv)" -eq 0 ] && [ "$(wc -l <g/metrics.csv)" -eq 3 ] && ok || bad "--eval-data: $(cat g/metrics.csv)"
err=$(train --steps 2 --eval-every 1 --eval-data small-images-idx3-ubyte --out g 2>&1); st=$?
[ $st -eq 1 ] && grep -q "\-\-eval-every: small-images-idx3-ubyte has no labels to match codes to" <<<"$err" \
  && ok || bad "unlabelled eval data: $st $err"
err=$("$migc" train "$root/models/dcgan_fashion.mig" --data fashion --batch 8 --steps 1 --eval-every 1 --out h 2>&1); st=$?
[ $st -eq 1 ] && grep -q "\-\-eval-every: dcgan_fashion has no categorical code that encode predicts" <<<"$err" \
  && ok || bad "no code: $st $err"
err=$(train --eval-every 0 2>&1); st=$?
[ $st -eq 2 ] && grep -q "\-\-eval-every needs a whole number of at least 1" <<<"$err" && ok || bad "--eval-every 0: $st $err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
