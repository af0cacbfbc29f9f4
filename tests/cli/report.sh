#!/usr/bin/env bash
# migc report: a self-contained page for a run: a table of the last metrics row, an SVG
# chart of the losses and one of the MI estimates with one point per logged step, and
# the newest sample grid and figure embedded as PNG data that decodes to the files'
# exact bytes; with --eval-every, the evaluations against step and wall time; the last
# migc eval (RUN/eval.json) as a table. Written atomically; a directory without metrics
# is refused.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
"$migc" train "$root/models/infogan_mlp.mig" --batch 16 --steps 20 --log-every 5 --sample-every 10 \
  --out r >/dev/null 2>&1 && "$migc" sample r >/dev/null 2>&1 || { echo "FAIL: preparing a run"; exit 1; }
out=$("$migc" report r 2>&1); st=$?
[ $st -eq 0 ] && [ "$out" = "r/report.html" ] && ok || bad "report: $st $out"
check=$(/usr/bin/python3 - r <<'PY'
import base64, re, sys
d = sys.argv[1]
h = open(d + "/report.html").read()
svgs = re.findall(r"<svg.*?</svg>", h, re.S)
lines = [re.findall(r'points="([^"]*)"', s) for s in svgs]
names = [re.findall(r'fill="#[0-9a-f]+">([^<]+)</text>', s) for s in svgs]
imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', h)
same = [base64.b64decode(imgs[0]) == open(d + "/samples/step-00000020.png", "rb").read(),
        base64.b64decode(imgs[1]) == open(d + "/samples/figure-step-00000020.png", "rb").read()] if len(imgs) == 2 else []
print(len(svgs), names, [len(p.split()) for l in lines for p in l], same, "<th>gen.loss</th>" in h)
PY
)
[ "$check" = "2 [['disc.loss', 'gen.loss'], ['mi_c', 'mi_s']] [4, 4, 4, 4] [True, True] True" ] && ok || bad "report content: $check"
# The most each MI estimate can reach, from the run's program: a dashed line in the MI
# chart and a row of the table (ln 10 and 2 (ln 2 - 0.5 ln(2 pi)) = -0.4516).
check=$(/usr/bin/python3 - r <<'PY'
import re, sys
h = open(sys.argv[1] + "/report.html").read()
svgs = re.findall(r"<svg.*?</svg>", h, re.S)
print([re.findall(r'<line class="bound"[^>]*><title>([^<]*)</title>', s) for s in svgs],
      re.findall(r'<tr class="bound">(.*?)</tr>', h))
PY
)
[ "$check" = "[[], ['mi_c at most 2.3026', 'mi_s at most -0.4516']] ['<td>at most</td><td></td><td>2.303</td><td>-0.4516</td><td></td><td></td>']" ] \
  && ok || bad "bounds in the report: $check"

# With --eval-every: the evaluations, by step and by wall time (metrics.csv's seconds),
# one point per evaluated row, each where metrics.csv puts it.
"$migc" train "$root/models/infogan_mlp.mig" --batch 16 --steps 20 --log-every 5 --eval-every 8 \
  --out e >/dev/null 2>&1 && "$migc" report e >/dev/null 2>&1 && "$migc" eval e --json >e.json 2>/dev/null \
  || bad "report of a run with --eval-every"
check=$(/usr/bin/python3 - e <<'PY'
import csv, json, re, sys
d = sys.argv[1]
bounds = json.load(open("e.json"))["mi_bounds"]
h = open(d + "/report.html").read()
rows = list(csv.DictReader(open(d + "/metrics.csv")))
charts = dict(re.findall(r"<h2>(.*?)</h2>\n(<svg.*?</svg>)", h, re.S))
def expect(cols, x):  # the chart's points, computed as migc report does
    W, H, L, R, T, B = 640, 260, 60, 150, 30, 40
    pts = [(float(r[x]), float(r[c])) for c in cols for r in rows if r[c] != ""]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    ys = [p[1] for p in pts] + [bounds[c[5:]] for c in cols if c[5:] in bounds]  # bounds in sight
    y0, y1 = min(ys), max(ys)
    return [" ".join("%.1f,%.1f" % (L + (W - L - R) * (float(r[x]) - x0) / (x1 - x0),
                                    H - B - (H - T - B) * (float(r[c]) - y0) / (y1 - y0))
                     for r in rows if r[c] != "") + " " for c in cols]
out = []
for title, cols in [("Matched accuracy on the test split", ["eval_accuracy"]),
                    ("MI estimates on generated images (nats)", ["eval_mi_c", "eval_mi_s"])]:
    for by, x, label in [("step", "step", "step"), ("wall time", "seconds", "wall time (s)")]:
        svg = charts.get("%s, by %s" % (title, by), "")
        got = re.findall(r'points="([^"]*)"', svg)
        out.append(got == expect(cols, x) and len(got[0].split()) == 3 and ">%s</text>" % label in svg)
print(len(rows), out)
PY
)
[ "$check" = "6 [True, True, True, True]" ] && ok || bad "eval charts: $check"

# migc eval of a run directory keeps its result (RUN/eval.json, the bytes --json
# printed); the report shows it, every value as eval gave it. A checkpoint file
# evaluated on its own leaves nothing; a damaged eval.json is named, not fatal.
cmp -s e.json e/eval.json && ok || bad "e/eval.json is not eval --json's output"
"$migc" report e >/dev/null 2>&1 || bad "report e after eval"
check=$(/usr/bin/python3 - e <<'PY'
import json, re, sys
j = json.load(open("e.json"))
h = open(sys.argv[1] + "/report.html").read()
sec = re.search(r"<h2>Evaluation</h2>\n<p>The last <code>migc eval</code> of this run, at step (\d+)\.</p>\n<table>\n(.*?)</table>", h, re.S)
rows = dict(re.findall(r"<tr><th>(.*?)</th><td[^>]*>(.*?)</td></tr>", sec.group(2))) if sec else {}
want = {"data": j["data"], "matched accuracy": "%.4f on %d images" % (j["accuracy"], j["images"]),
        "code value &rarr; label": " ".join("%d&rarr;%d" % (i, l) for i, l in enumerate(j["mapping"]))}
for k, v in j["mi"].items():
    want[k] = "%.4f nats (at most %.4f) on %d generated images" % (v, j["mi_bounds"][k], j["generated"])
for k, v in j["class_kept"].items():
    want["class kept along " + k] = "%.4f of %d images" % (v, j["class_kept_images"])
print(bool(sec) and int(sec.group(1)) == j["step"], rows == want, len(want))
PY
)
[ "$check" = "True True 7" ] && ok || bad "evaluation in the report: $check"
rm e/eval.json && "$migc" eval e/checkpoints/step-00000020.safetensors --batches 1 --draws 0 >/dev/null 2>&1 \
  && [ ! -e e/eval.json ] && [ ! -e e/checkpoints/eval.json ] && ok || bad "eval of a checkpoint file wrote eval.json"
echo '{"step": ' >e/eval.json && "$migc" report e >/dev/null 2>&1 \
  && grep -q "<h2>Evaluation</h2>.<p>e/eval.json: not a migc eval result (damaged JSON)</p>" <(tr '\n' '.' <e/report.html) \
  && ok || bad "report with a damaged eval.json"

# How the run was started (run.json) and the model's text, escaped for HTML: a run
# directory named with & and < is text, not markup.
"$migc" train "$root/models/infogan_mlp.mig" --batch 8 --steps 2 --seed 7 -D lr=0.5 \
  --out 'a&b<c' >/dev/null 2>&1 && "$migc" report 'a&b<c' >/dev/null 2>&1 || bad "report of a&b<c"
check=$(/usr/bin/python3 - 'a&b<c' "$root/models/infogan_mlp.mig" <<'PY'
import html, re, sys
h = open(sys.argv[1] + "/report.html").read()
rows = dict(re.findall(r'<tr><th>([^<]*)</th><td[^>]*><code>([^<]*)</code></td></tr>', h))
pre = re.search(r"<pre>(.*)</pre>", h, re.S)
print(rows.get("seed"), rows.get("batch"), rows.get("settings"), rows.get("data"),
      "<h1>migc run <code>a&amp;b&lt;c</code></h1>" in h,
      bool(pre) and html.unescape(pre.group(1)) == open(sys.argv[2]).read())
PY
)
[ "$check" = "7 8 lr=0.5 mnist True True" ] && ok || bad "settings in the report: $check"
rm 'a&b<c/run.json' && "$migc" report 'a&b<c' >/dev/null 2>&1 && grep -q "No run.json: this run was made by an older migc" 'a&b<c/report.html' \
  && ok || bad "report of a run without run.json"

err=$("$migc" report nowhere 2>&1); st=$?
[ $st -eq 1 ] && grep -q "nowhere/metrics.csv: cannot open" <<<"$err" && ok || bad "no metrics: $st $err"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
