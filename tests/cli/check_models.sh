#!/usr/bin/env bash
# Every model in models/ (and the recipe arms of bench/recipes/) passes `migc check`; the CLI's help, version and usage
# errors behave as documented (exit 0 / 1 / 2).
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"

for f in "$root"/models/*.mig "$root"/bench/recipes/*.mig; do
  out=$("$migc" check "$f" 2>&1); st=$?
  if [ $st -eq 0 ] && grep -q "is well-formed" <<<"$out" && ! grep -q "warning" <<<"$out"; then ok
  else bad "migc check $f (exit $st): $out"; fi
done

out=$("$migc" check "$root"/models/*.mig 2>&1); st=$?
[ $st -eq 0 ] && [ "$(grep -c "is well-formed" <<<"$out")" -eq "$(ls "$root"/models/*.mig | wc -l)" ] && ok \
  || bad "check of every model at once (exit $st): $out"
out=$("$migc" check "$root/models/infogan_mlp.mig" "$root/tests/diagnostics/seed_mismatch.mig" 2>&1); st=$?
[ $st -eq 1 ] && grep -q "infogan_mlp.mig: model infogan_mlp is well-formed" <<<"$out" && \
  grep -q "seed_mismatch.mig:37:17: error" <<<"$out" && ok || bad "a good and a bad file: $st $out"
out=$("$migc" check "$root/models/infogan_mnist.mig")
grep -q "4 nets" <<<"$out" && grep -q "entries train_step generate encode" <<<"$out" && ok \
  || bad "summary of infogan_mnist: $out"

"$migc" --version | grep -Eq '^migc [0-9]+\.[0-9]+\.[0-9]+$' && ok || bad "--version"
"$migc" --help | grep -q "check" && ok || bad "--help lists check"
for c in check dump; do
  "$migc" $c --help | grep -q "^usage: migc $c" && ok || bad "$c --help"
  "$migc" help $c | grep -q -- "-D NAME=VALUE" && ok || bad "help $c shows -D"
done

"$migc" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown command exits 2"
"$migc" check >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "check without a file exits 2"
"$migc" check --bogus x.mig >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown option exits 2"
# a misspelt option: the nearest of the command's own options (usage, help, common ones)
for pair in "train --eval-evry --eval-every" "eval --dat --data" "bench --thread --threads" \
            "check --batchh --batch"; do
  read -r cmd opt want <<<"$pair"
  err=$("$migc" "$cmd" x.mig "$opt" 2>&1)
  grep -qF "migc $cmd: unknown option '$opt'; did you mean '$want'? (see migc $cmd --help)" <<<"$err" \
    && ok || bad "$cmd $opt: $err"
done
err=$("$migc" train x.mig --zzzzzz 2>&1)
[ "$err" = "migc train: unknown option '--zzzzzz' (see migc train --help)" ] && ok || bad "--zzzzzz: $err"
"$migc" dump "$root/models/infogan_mlp.mig" >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "dump without a stage exits 2"

err=$("$migc" check /nonexistent/model.mig 2>&1); st=$?
[ $st -eq 1 ] && grep -q "/nonexistent/model.mig" <<<"$err" && ok || bad "missing file: $st $err"

# -D overrides: a known constant works, an unknown one is named, a malformed one is a usage error.
"$migc" check "$root/models/infogan_mnist.mig" -D lambda=0.5 >/dev/null 2>&1 && ok || bad "-D lambda=0.5"
err=$("$migc" check "$root/models/infogan_mnist.mig" -D lamda=0.5 2>&1); st=$?
[ $st -eq 1 ] && grep -q "no constant named 'lamda'" <<<"$err" && grep -q "lambda" <<<"$err" && ok \
  || bad "-D lamda: $st $err"
"$migc" check "$root/models/infogan_mnist.mig" -D lambda=abc >/dev/null 2>&1; [ $? -eq 2 ] && ok \
  || bad "-D lambda=abc exits 2"
out=$("$migc" dump --ir "$root/models/infogan_mnist.mig" --batch 16 | head -1)
[ "$out" = "module infogan_mnist batch 16" ] && ok || bad "--batch 16: $out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
