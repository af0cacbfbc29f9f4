#!/usr/bin/env bash
# migc train --seeds: one run per seed, each in DIR/seed-S and the same run as
# `migc train --seed S` alone, measured after its last step; DIR/seeds.csv holds per
# seed its steps, seconds, MI estimates and matched accuracy (what migc eval says of
# the seed's directory), then the median of each column and the best seed's row;
# migc report DIR shows that table and links each seed's own report. Tiny: two seeds
# of infogan_mlp, 12 steps at batch 16 (and three seeds of 2 steps for an odd median).
set -u
migc=$1 root=$2
model=$root/models/infogan_mlp.mig
. "$root/tests/cli_lib.sh"
cli_workdir
train() { "$migc" train "$model" --batch 16 --sample-every 1000 "$@"; }

train --steps 12 --seeds 3,1 --out s >table.txt 2>s.log; st=$?
[ $st -eq 0 ] && [ -d s/seed-3/checkpoints ] && [ -d s/seed-1/checkpoints ] && ok || bad "train --seeds: $st $(cat s.log)"
[ "$(cut -d, -f1 s/seeds.csv | tr '\n' ' ')" = "seed 3 1 median best " ] && head -1 s/seeds.csv | grep -qx "seed,steps,seconds,mi_c,mi_s,accuracy" \
  && ok || bad "seeds.csv: $(cat s/seeds.csv)"
for seed in 3 1; do
  "$migc" eval s/seed-$seed --json --draws 0 >e$seed.json 2>/dev/null || bad "migc eval s/seed-$seed"
  # the seed's run is the run `migc train --seed S` makes alone
  train --steps 12 --seed $seed --out solo$seed >/dev/null 2>&1
  cmp -s s/seed-$seed/checkpoints/step-00000012.safetensors solo$seed/checkpoints/step-00000012.safetensors \
    && ok || bad "seed $seed differs from a run of its own"
done
check=$(/usr/bin/python3 - s/seeds.csv e3.json e1.json <<'PY'
import csv, json, sys
rows = {r["seed"]: r for r in csv.DictReader(open(sys.argv[1]))}
ev = {"3": json.load(open(sys.argv[2])), "1": json.load(open(sys.argv[3]))}
cols = lambda j: {"mi_c": j["mi"]["mi_c"], "mi_s": j["mi"]["mi_s"], "accuracy": j["accuracy"]}
# each seed's row: migc eval of its directory, to the digits seeds.csv prints (%.6g)
per_seed = all(rows[s]["steps"] == "12" and all(rows[s][k] == "%.6g" % v for k, v in cols(j).items())
               for s, j in ev.items())
# the median of two is their mean (from eval's full-precision values)
med = rows["median"]
median = (med["steps"] == "12" and all(med[k] == "%.6g" % ((cols(ev["3"])[k] + cols(ev["1"])[k]) / 2) for k in cols(ev["3"]))
          and abs(float(med["seconds"]) - (float(rows["3"]["seconds"]) + float(rows["1"]["seconds"])) / 2) <= 0.0011)
# best: the row of the seed with the higher accuracy (the first on a tie)
b = "3" if ev["3"]["accuracy"] >= ev["1"]["accuracy"] else "1"
best = all(rows["best"][k] == rows[b][k] for k in ("steps", "seconds", "mi_c", "mi_s", "accuracy"))
print(per_seed, median, best, b)
PY
)
b=${check##* }
[ "${check% *}" = "True True True" ] && ok || bad "seeds.csv against migc eval: $check; $(cat s/seeds.csv)"
# the table on stdout: a header with each estimate's bound, a row per seed, median, best
grep -q "^seed  *steps  *seconds  *mi_c (max 2.3026)  *mi_s (max -0.4516)  *accuracy$" table.txt \
  && [ "$(awk '{print $1}' table.txt | tr '\n' ' ')" = "seed 3 1 median best " ] && grep -q "^best (seed $b) " table.txt \
  && ok || bad "table: $(cat table.txt)"

# three seeds: the median is the middle one, column by column
train --steps 2 --seeds 4-6 --out t >/dev/null 2>&1 || bad "train --seeds 4-6"
check=$(/usr/bin/python3 - t/seeds.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print([r["seed"] for r in rows], all(sorted(rows[:3], key=lambda r: float(r[k]))[1][k] == rows[3][k]
                                     for k in ("steps", "seconds", "mi_c", "mi_s", "accuracy")))
PY
)
[ "$check" = "['4', '5', '6', 'median', 'best'] True" ] && ok || bad "odd median: $check; $(cat t/seeds.csv)"

# migc report DIR: the seeds' table, each seed linked to its own report (written too)
out=$("$migc" report s 2>&1); st=$?
[ $st -eq 0 ] && [ "$(tail -1 <<<"$out")" = "s/report.html" ] && [ -f s/seed-3/report.html ] && [ -f s/seed-1/report.html ] \
  && ok || bad "report s: $st $out"
check=$(/usr/bin/python3 - s <<'PY'
import csv, re, sys
h = open(sys.argv[1] + "/report.html").read()
rows = list(csv.reader(open(sys.argv[1] + "/seeds.csv")))
cells = [re.findall(r"<t[dh]>(?:<a href=\"[^\"]*\">)?([^<]*)", r) for r in re.findall(r"<tr>(.*?)</tr>", h)]
print(cells == rows, re.findall(r'href="([^"]*)"', h), re.findall(r'<tr class="bound">(.*?)</tr>', h))
PY
)
[ "$check" = "True ['seed-3/report.html', 'seed-1/report.html'] ['<th>at most</th><td></td><td></td><td>2.303</td><td>-0.4516</td><td></td>']" ] \
  && ok || bad "seeds page: $check"

# refusals
for args in "--seeds 1,2 --seed 3" "--seeds 1,2 --resume s/seed-1" "--seeds 3-1" "--seeds 1,1" "--seeds 1,x" "--seeds 1,"; do
  err=$(train --steps 2 $args 2>&1); st=$?
  [ $st -eq 2 ] && grep -q "\-\-seed" <<<"$err" && ok || bad "$args: $st $err"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
