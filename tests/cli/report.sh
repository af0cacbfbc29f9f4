#!/usr/bin/env bash
# migc report: a self-contained page for a run: a table of the last metrics row, an SVG
# chart of the losses and one of the MI estimates with one point per logged step, and
# the newest sample grid and figure embedded as PNG data that decodes to the files'
# exact bytes. Written atomically; a directory without metrics is refused.
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
err=$("$migc" report nowhere 2>&1); st=$?
[ $st -eq 1 ] && grep -q "nowhere/metrics.csv: cannot open" <<<"$err" && ok || bad "no metrics: $st $err"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
