#!/usr/bin/env bash
# Every `console` block of the docs (docs/*.md, README.md, examples/README.md) is run
# here and must print exactly what the page shows, so the pages cannot go stale: the
# messages of docs/errors.md, the tour of README.md, the walk through docs/language.md.
# Every `mig` block is a whole model: one marked `<!-- copy-of: PATH -->` must be that
# file's text, and one that no console block runs must pass `migc check`.
# Files come from the page's `<!-- file: NAME -->` blocks; each page's commands run in
# one scratch directory of its own (with the repository's models/, tests/, data/,
# bench/ and examples/ linked in, and build/migc) with migc on the PATH. Lines that
# differ from run to run are left out on both sides: migc train's compile times and
# progress lines; temporary files' process ids read as PID. (_slow: it checks messages,
# not memory, so the sanitizer run skips it.)
#   docs_console_slow.sh MIGC ROOT            check
#   docs_console_slow.sh MIGC ROOT --update   rewrite the pages' outputs with what migc says
set -u
migc=$1 root=$(cd "$2" && pwd) mode=${3:-check}
bin=$(cd "$(dirname "$migc")" && pwd)
status=0 pages=0
for page in "$root"/docs/*.md "$root/README.md" "$root/examples/README.md"; do
grep -q '^```console$\|^```mig' "$page" || continue
pages=$((pages + 1))
work=$(mktemp -d)
ln -s "$root/models" "$root/tests" "$root/data" "$root/bench" "$root/examples" "$work/"
mkdir "$work/build" && ln -s "$bin/migc" "$work/build/migc"
PATH="$bin:$PATH" /usr/bin/python3 - "$page" "$work" "$mode" "$root" <<'PY' || status=1
import os, re, subprocess, sys
page, work, mode, root = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
name = os.path.relpath(page, root)
lines = open(page).read().split("\n")
noise = re.compile(r"^(migc train: compiled with LLVM in |step \d+/\d+ )")
def run(cmd):
    p = subprocess.run(["bash", "-c", cmd], cwd=work, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode(errors="replace").replace("\r", "\n")
    out = re.sub(r"\.tmp\.\d+", ".tmp.PID", out)
    return [l for l in out.rstrip("\n").split("\n") if l and not noise.match(l)]
out_lines, i, failed, blocks, fname, copy_of = [], 0, 0, 0, None, None
models, commands = [], ""  # every mig block (line, file name), what the console blocks run
while i < len(lines):
    l = lines[i]
    m = re.match(r"<!-- file: (\S+) -->", l)
    if m: fname = m.group(1)
    m = re.match(r"<!-- copy-of: (\S+) -->", l)
    if m: copy_of = m.group(1)
    if l.startswith("```mig"):
        j = lines.index("```", i + 1)
        text = "\n".join(lines[i + 1:j]) + "\n"
        if copy_of and text != open(f"{root}/{copy_of}").read():
            failed += 1
            print(f"{name}:{i + 1}: the block is not the text of {copy_of}")
        name_ = fname or f"_block_at_line_{i + 1}.mig"
        open(f"{work}/{name_}", "w").write(text)
        models.append((i + 1, name_))
        fname = copy_of = None
    elif l.startswith("```") and l != "```" and l != "```console" and fname:
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
            commands += cmd + "\n"
            k += 1
            want = []
            while k < len(body) and not body[k].startswith("$ "):
                want.append(body[k]); k += 1
            got = run(cmd)
            new += ["$ " + cmd] + got
            if [w for w in want if w] != got and mode == "check":
                failed += 1
                print(f"{name}:{i + 1}: $ {cmd}\n  page shows:\n    " + "\n    ".join(want)
                      + "\n  migc says:\n    " + "\n    ".join(got))
        out_lines += [l] + new + ["```"]
        i = j + 1
        continue
    out_lines.append(l)
    i += 1
# a model block that no console block runs must pass migc check
for line, f in models:
    if re.search(r"(^|[\s/])" + re.escape(f) + r"($|[\s;|&)])", commands, re.M):
        continue
    got = run(f"migc check {f}")
    if not got or not got[-1].startswith(f"{f}: model ") or " is well-formed: " not in got[-1]:
        failed += 1
        print(f"{name}:{line}: the model block ({f}) does not pass migc check:\n    "
              + "\n    ".join(got))
if mode == "--update":
    open(page, "w").write("\n".join(out_lines))
print(f"{name}: {blocks} console blocks, {len(models)} model blocks, {failed} differ")
sys.exit(1 if failed else 0)
PY
rm -rf "$work"
done
[ $pages -ge 3 ] || { echo "FAIL: only $pages pages with console blocks found"; status=1; }
exit $status
