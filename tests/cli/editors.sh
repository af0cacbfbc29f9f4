#!/usr/bin/env bash
# editors/: the VS Code (TextMate) grammar and the Vim syntax file stay true to the
# language and highlight the example models:
# - their keyword lists are the lexer's keywords (frontend/lexer.l) and their function
#   lists every built-in, optimizer, schedule, initialiser and distribution name of
#   frontend/ (and repeat), no more, no fewer;
# - scanning every models/*.mig with the TextMate patterns as an editor does (at each
#   position the earliest match, the first pattern on a tie) gives every comment,
#   string, keyword, built-in call and number the scope it should have;
# - headless Vim with editors/vim on its runtimepath gives those same tokens the
#   syntax groups migComment, migString, migDeclaration/migStatement, migBuiltin and
#   migNumber.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
out=$(/usr/bin/python3 - "$root" <<'PY' 2>&1
import json, os, re, subprocess, sys
root = sys.argv[1]
problems = []
lexer = open(os.path.join(root, "frontend/lexer.l")).read()
keywords = set(re.findall(r'^"([a-z]+)"\s+\{ return TOK_', lexer, re.M))
src = open(os.path.join(root, "frontend/builtins.c")).read() + \
    open(os.path.join(root, "frontend/elaborate.c")).read()
functions = (set(re.findall(r'\{"([a-z_][a-z_0-9]*)", "', src)) - keywords) | {"repeat"}

g = json.load(open(os.path.join(root, "editors/vscode/syntaxes/mig.tmLanguage.json")))
rep = g["repository"]
words = lambda m: set(re.match(r"\\b\((.*?)\)\\b", m).group(1).split("|"))
tm_kw = words(rep["declaration"]["match"]) | words(rep["statement"]["match"])
tm_fn = words(rep["builtin"]["match"])
vim = open(os.path.join(root, "editors/vim/syntax/mig.vim")).read()
vim_words = lambda group: set(" ".join(re.findall(r"^syn keyword %s (.*)$" % group, vim, re.M)).split())
vim_kw = vim_words("migDeclaration") | vim_words("migStatement")
vim_fn = vim_words("migBuiltin")
for what, have, want in [("TextMate keywords", tm_kw, keywords), ("TextMate functions", tm_fn, functions),
                         ("Vim keywords", vim_kw, keywords), ("Vim functions", vim_fn, functions)]:
    if have != want:
        problems.append("%s: missing %s, extra %s" % (what, sorted(want - have), sorted(have - want)))

# TextMate scanning: the top-level patterns (includes resolved), earliest match first
pats = [rep[p["include"][1:]] for p in g["patterns"]]
compiled = [(re.compile(p["match"]), p) for p in pats]
def scan(line):
    """[(start, end, scope)] of one line."""
    toks, pos = [], 0
    while pos < len(line):
        best = None
        for rx, p in compiled:
            m = rx.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, p)
        if not best:
            break
        m, p = best
        if "name" in p:
            toks.append((m.start(), m.end(), p["name"]))
        for k, cap in p.get("captures", {}).items():
            if m.group(int(k)) is not None:
                toks.append((m.start(int(k)), m.end(int(k)), cap["name"]))
        pos = m.end()
    return toks

# what each kind of token must be: found on the raw text outside comments and strings
expect = []  # (file, line, col, text, tm scope prefix, vim groups)
models = sorted(f for f in os.listdir(os.path.join(root, "models")) if f.endswith(".mig"))
tm_checked = 0
for f in models:
    lines = open(os.path.join(root, "models", f)).read().split("\n")
    for ln, line in enumerate(lines, 1):
        code, comment = line, None
        m = re.search(r'"[^"]*"|#', line)
        strings = []
        while m:
            if m.group(0) == "#":
                code, comment = line[:m.start()], m.start()
                break
            strings.append(m.span())
            m = re.compile(r'"[^"]*"|#').search(line, m.end())
        want = []
        if comment is not None:
            want.append((comment, line[comment:], "comment.line", ("migComment",)))
        for a, b in strings:
            want.append((a, line[a:b], "string.quoted", ("migString",)))
        blank = list(code)
        for a, b in strings:
            blank[a:b] = " " * (b - a)
        code = "".join(blank)
        for m in re.finditer(r"\b[A-Za-z_][A-Za-z0-9_]*\b", code):
            w = m.group(0)
            if w in keywords:
                want.append((m.start(), w, "keyword.", ("migDeclaration", "migStatement")))
            elif w in functions and re.match(r"\s*\(", code[m.end():]):
                want.append((m.start(), w, "support.function.builtin", ("migBuiltin",)))
        for m in re.finditer(r"(?<![A-Za-z0-9_.])(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(?![A-Za-z0-9_.])", code):
            want.append((m.start(), m.group(0), "constant.numeric", ("migNumber",)))
        toks = scan(line)
        for col, text, scope, groups in want:
            got = [s for a, b, s in toks if a == col and b == col + len(text)]
            if not any(s.startswith(scope) for s in got):
                problems.append("%s:%d:%d %r: TextMate scopes %s, want %s" % (f, ln, col + 1, text, got, scope))
            tm_checked += 1
            expect.append((f, ln, col, text, groups))

# Vim: the syntax group at each expected token's first character
vim_checked = 0
if subprocess.run(["sh", "-c", "command -v vim"], capture_output=True).returncode == 0:
    for f in models:
        mine = [e for e in expect if e[0] == f]
        script = ["set nocompatible", "set rtp^=" + os.path.join(root, "editors/vim"),
                  "filetype on", "syntax on", "edit " + os.path.join(root, "models", f),
                  "redir! > vim.out"]
        script += ['silent echo synIDattr(synID(%d, %d, 1), "name")' % (ln, col + 1) for _, ln, col, _, _ in mine]
        script += ["redir END", "qall!"]
        open("vim.cmd", "w").write("\n".join(script) + "\n")
        subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-S", "vim.cmd"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        got = open("vim.out").read().split("\n")[1:]  # redir starts with an empty line
        for (fname, ln, col, text, groups), name in zip(mine, got):
            if name not in groups:
                problems.append("%s:%d:%d %r: Vim group %r, want %s" % (fname, ln, col + 1, text, name, "/".join(groups)))
            vim_checked += 1
        if len(got) < len(mine):
            problems.append("%s: Vim answered %d of %d queries" % (f, len(got), len(mine)))
    vim_note = "%d tokens in Vim" % vim_checked
else:
    vim_note = "Vim not installed (scripts/install-deps.sh installs it)"
print("%d keywords, %d functions; %d models, %d tokens in TextMate, %s" % (
    len(keywords), len(functions), len(models), tm_checked, vim_note))
for p in problems[:20]:
    print("PROBLEM", p)
PY
)
echo "$out" | grep -q "^PROBLEM" && bad "$(echo "$out" | head -25)" || { echo "$out"; echo "$out" | grep -q "tokens in TextMate" && ok || bad "$out"; }
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
