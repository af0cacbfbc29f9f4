#!/usr/bin/env bash
# docs/errors.md shows what migc says about every class of bad input: each `console`
# block there is run here and must print exactly what the page shows. Files come from
# the page's `<!-- file: NAME -->` blocks; the commands run in one scratch directory
# (with the repository's models/, tests/ and data/ linked in) with migc on the PATH.
# Lines that differ from run to run are left out on both sides: migc train's compile
# times and progress lines; temporary files' process ids read as PID. (_slow: it checks
# messages, not memory, so the sanitizer run skips it.)
#   errors_doc_slow.sh MIGC ROOT            check
#   errors_doc_slow.sh MIGC ROOT --update   rewrite the page's outputs with what migc says
set -u
migc=$1 root=$(cd "$2" && pwd) mode=${3:-check}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$root/models" "$root/tests" "$root/data" "$work/"
PATH="$(cd "$(dirname "$migc")" && pwd):$PATH" /usr/bin/python3 - "$root/docs/errors.md" "$work" "$mode" <<'PY'
import re, subprocess, sys
page, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(page).read().split("\n")
noise = re.compile(r"^(migc train: compiled with LLVM in |step \d+/\d+ )")
def run(cmd):
    p = subprocess.run(["bash", "-c", cmd], cwd=work, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode(errors="replace").replace("\r", "\n")
    out = re.sub(r"\.tmp\.\d+", ".tmp.PID", out)
    return [l for l in out.rstrip("\n").split("\n") if l and not noise.match(l)]
out_lines, i, failed, blocks, fname = [], 0, 0, 0, None
while i < len(lines):
    l = lines[i]
    m = re.match(r"<!-- file: (\S+) -->", l)
    if m: fname = m.group(1)
    if l.startswith("```") and l != "```" and l != "```console" and fname:
        j = lines.index("```", i + 1)
        open(f"{work}/{fname}", "w").write("\n".join(lines[i + 1:j]) + "\n")
        fname = None
    if l == "```console":
        j = lines.index("```", i + 1)
        body, new = lines[i + 1:j], []
        blocks += 1
        k = 0
        while k < len(body):
            cmd = body[k][2:]
            k += 1
            want = []
            while k < len(body) and not body[k].startswith("$ "):
                want.append(body[k]); k += 1
            got = run(cmd)
            new += ["$ " + cmd] + got
            if [w for w in want if w] != got and mode == "check":
                failed += 1
                print(f"docs/errors.md:{i + 1}: $ {cmd}\n  page shows:\n    " + "\n    ".join(want)
                      + "\n  migc says:\n    " + "\n    ".join(got))
        out_lines += [l] + new + ["```"]
        i = j + 1
        continue
    out_lines.append(l)
    i += 1
if mode == "--update":
    open(page, "w").write("\n".join(out_lines))
print(f"{blocks} console blocks, {failed} commands differ")
sys.exit(1 if failed else 0)
PY
