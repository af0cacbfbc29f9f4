#!/usr/bin/env bash
# migc train under faults: a disk that fills up while a checkpoint is written, a
# process killed with SIGKILL again and again (at random moments and in the middle of
# writing a checkpoint), a run that diverges. After each: the checkpoints on disk are
# whole and load, none is lost, and resuming ends bit for bit where an uninterrupted
# run ends. Faults come from runtime/files.c's test hook MIGC_TEST_FAULT
# (fail-write:N, kill-write:N: the N-th file written fails with ENOSPC, or the process
# is killed, once half of its bytes are out). Small and quick: all-dense InfoGAN,
# batch 8, on the first 256 MNIST images.
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
. "$root/tests/cli_lib.sh"
[ -f "$root/data/mnist/train-images-idx3-ubyte" ] || { echo "FAIL: no data/mnist: run scripts/fetch-data.sh"; exit 1; }
# the first 256 images as an IDX file of their own: loading stays instant
/usr/bin/python3 - "$root/data/mnist/train-images-idx3-ubyte" small-images-idx3-ubyte <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(struct.pack(">IIII", 0x803, 256, 28, 28) + b[16:16 + 256 * 784])
PY
STEPS=80
args() { echo --batch 8 --data small-images-idx3-ubyte --steps $STEPS --save-every 4 --keep 100 \
         --sample-every 1000; }
# shellcheck disable=SC2046
train() { "$migc" train "$model" $(args) "$@"; }
ckpt() { printf '%s/checkpoints/step-%08d.safetensors' "$1" "$2"; }
# A checkpoint is whole: its header parses, its tensors tile the data exactly, every
# value is finite. Prints "ok STEP" or what is wrong.
check_ckpt() {
  /usr/bin/python3 - "$1" <<'PY'
import json, math, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h.pop("__metadata__")
end = 0
for name, t in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"]):
    lo, hi = t["data_offsets"]
    assert lo == end, name
    end = hi
    vals = struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi])
    assert all(math.isfinite(v) for v in vals), name + " is not finite"
assert 8 + n + end == len(b), "trailing or missing bytes"
print("ok", meta["step"])
PY
}

# The uninterrupted run every other run must end equal to.
train --out ref >ref.log 2>&1 || bad "reference run: $(tail -2 ref.log)"
final=$(ckpt ref $STEPS)
[ -f "$final" ] && ok || bad "no $final"

# ---- A full disk: the second checkpoint's write fails with ENOSPC halfway (the
# third file written: run.json is the first).
MIGC_TEST_FAULT=fail-write:3 train --out full >full.log 2>&1; st=$?
[ $st -eq 1 ] && grep -q "step-00000008.safetensors: cannot write .*No space left on device (the previous checkpoints are intact)" full.log \
  && ok || bad "disk full: exit $st: $(tail -2 full.log)"
[ "$(ls full/checkpoints)" = "step-00000004.safetensors" ] && ok \
  || bad "disk full leaves exactly the first checkpoint: $(ls full/checkpoints)"
cmp -s "$(ckpt full 4)" "$(ckpt ref 4)" && ok || bad "the checkpoint before the full disk changed"
train --resume full >>full.log 2>&1 && cmp -s "$(ckpt full $STEPS)" "$final" && ok \
  || bad "resumed after the full disk, the run differs: $(tail -2 full.log)"

# A real full device: metrics.csv on /dev/full, where every write fails with ENOSPC.
if [ -w /dev/full ]; then
  mkdir -p devfull && ln -s /dev/full devfull/metrics.csv
  train --out devfull --log-every 2 >devfull.log 2>&1; st=$?
  [ $st -eq 1 ] && grep -q "^migc train: cannot write devfull/metrics.csv: No space left on device$" devfull.log \
    && ok || bad "metrics.csv on a full device: exit $st: $(tail -1 devfull.log)"
fi

# ---- SIGKILL, again and again: odd rounds at a random moment once the round has made
# progress, even rounds in the middle of writing a checkpoint (the hook kills the
# process half way through the round's second file). After each, every checkpoint
# left is whole and equal to the uninterrupted run's of that step.
rounds=0
for round in 1 2 3 4 5 6; do
  if ls kill/checkpoints/step-*.safetensors >/dev/null 2>&1; then how=(--resume kill); else how=(--out kill); fi
  if ((round % 2)); then
    : >kill$round.log
    # migc itself in the background, not the train function: $! must be migc's pid
    # shellcheck disable=SC2046
    "$migc" train "$model" $(args) "${how[@]}" --log-every 1 >kill$round.log 2>&1 &
    pid=$!
    want=$((RANDOM % 8 + 1)) # steps this round makes before the kill, give or take
    for _ in $(seq 500); do (($(grep -c "^step [0-9]*/" kill$round.log) >= want)) && break; sleep 0.01; done
    sleep "0.00$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null; st=$?
    # killed (137), or done; never an error: resuming loaded the last round's newest
    # checkpoint (it printed progress first), so that checkpoint loads
    [ $st -eq 137 ] || [ $st -eq 0 ] && ok || bad "round $round: exit $st: $(tail -1 kill$round.log)"
  else
    # killed in its second checkpoint (the third file: run.json first): it resumed
    # (loading the newest) and wrote one
    MIGC_TEST_FAULT=kill-write:3 train "${how[@]}" >kill$round.log 2>&1; st=$?
    [ $st -eq 137 ] && ok || bad "round $round: kill-write:3 should kill migc, exit $st: $(tail -1 kill$round.log)"
  fi
  grep -q "done, $STEPS steps" kill$round.log && break
  rounds=$((rounds+1))
  newest=$(ls kill/checkpoints/step-*.safetensors 2>/dev/null | tail -1)
  if [ -n "$newest" ]; then
    r=$(check_ckpt "$newest" 2>&1)
    [[ $r == "ok "* ]] && ok || bad "round $round: $newest is damaged: $r"
  fi
  for f in kill/checkpoints/step-*.safetensors; do
    [ -f "$f" ] || continue
    n=${f##*step-}; n=$((10#${n%.safetensors}))
    cmp -s "$f" "$(ckpt ref "$n")" && ok || bad "round $round: $f differs from the uninterrupted run's"
  done
done
((rounds >= 5)) && ok || bad "only $rounds rounds were killed before the run ended"
train --resume kill >>kill.log 2>&1; st=$?
[ $st -eq 0 ] && cmp -s "$(ckpt kill $STEPS)" "$final" && ok \
  || bad "after $rounds kills, the resumed run differs (exit $st): $(tail -3 kill.log)"
ls kill/checkpoints | grep -q tmp && bad "temporary files left: $(ls kill/checkpoints)" || ok

# ---- Divergence: gradient ascent on exp(D(x)) overflows after a few steps. The run
# stops at the first non-finite loss, naming the step; the checkpoint of that step
# (the state the bad step started from) is the newest on disk, whole and finite.
cat >diverge.mig <<'MIG'
model diverge
input x : [1, 28, 28] range [0, 1]
const lr = 0.01
net D(x) {
  return dense(flatten(x), 1)
}
train batch 8 {
  step d(D) : maximize mean(exp(D(x))) with sgd(lr=lr)
}
MIG
"$migc" train diverge.mig --data small-images-idx3-ubyte --steps 100 --save-every 1 --log-every 1 \
  --out div >div.log 2>&1; st=$?
msg=$(grep "is NaN\|is infinite" div.log)
if [[ $st -eq 1 && $msg =~ step\ ([0-9]+):\ d.loss\ is\ (NaN|infinite)\;\ stopping\ without\ saving ]]; then
  ok
  n=${BASH_REMATCH[1]}
  last=$(ls div/checkpoints | tail -1)
  [ "$last" = "$(printf 'step-%08d.safetensors' "$n")" ] && ok || bad "divergence at step $n, newest checkpoint $last"
  r=$(check_ckpt "div/checkpoints/$last" 2>&1)
  [ "$r" = "ok $n" ] && ok || bad "the last good checkpoint: $r"
  [ "$(tail -1 div/metrics.csv | cut -d, -f1)" = "$n" ] && ! cut -d, -f3- div/metrics.csv | grep -qi "nan\|inf" \
    && ok || bad "metrics.csv should end at step $n with finite losses: $(tail -2 div/metrics.csv)"
else
  bad "divergence: exit $st: $(tail -2 div.log)"
fi
# Diverging before the first checkpoint, there is no good one, and the message says so.
"$migc" train diverge.mig --data small-images-idx3-ubyte -D lr=1e6 --steps 10 --out div0 >div0.log 2>&1; st=$?
[ $st -eq 1 ] && grep -q "step [0-9]: d.loss is infinite; stopping without saving this state (no checkpoint was saved before it)" div0.log \
  && ok || bad "divergence at step 0: exit $st: $(tail -1 div0.log)"

# A checkpoint whose step metadata disagrees with its optimizers' step counters (here
# edited from 80 to 76, same length) is refused, naming the file, not resumed at the
# wrong Adam bias correction.
mkdir -p meta/checkpoints
sed 's/"step":"80"/"step":"76"/' "$final" >meta/checkpoints/step-00000080.safetensors
"$migc" train "$model" --batch 8 --data small-images-idx3-ubyte --resume meta --steps 90 >meta.log 2>&1; st=$?
[ $st -eq 1 ] && grep -q "step-00000080.safetensors: its step metadata says 76, but its step counter .* holds 80" meta.log \
  && ok || bad "edited step metadata: exit $st: $(tail -1 meta.log)"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
