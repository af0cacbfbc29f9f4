#!/usr/bin/env bash
# One table of commands and options (cli/migc_main.c's), and everything that lists
# them agrees with it:
# - each command's usage line names every option its --help describes (the options
#   before the common ones: -D, --batch, --color, --max-memory, -h);
# - docs/language.md section 11's synopsis is exactly the usage lines of the commands
#   `migc help` lists, in its order.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cmds=$("$migc" help | awk '/^commands:/{on=1; next} on && /^  [a-z]+ /{print $1} on && /^$/{exit}')
[ "$(wc -w <<<"$cmds")" -ge 9 ] && ok || bad "commands listed by migc help: $cmds"
synopsis=""
for c in $cmds; do
  help=$("$migc" "$c" --help)
  usage=$(awk '/^usage: /{on=1; sub(/^usage: /, "")} on && /^$/{exit} on{print}' <<<"$help")
  synopsis+="$usage"$'\n'
  for flag in $(awk '/^options:$/{exit} /^  -/{print $1}' <<<"$help" | tr -d ','); do
    grep -qF -- "$flag" <<<"$usage" && ok || bad "migc $c: --help describes $flag, the usage line does not name it"
  done
done
synopsis+="migc help [COMMAND]      migc COMMAND --help      migc version"
doc=$(awk '/^## 11\. /{on=1} on && /^```text$/{t=1; next} t && /^```$/{exit} t{print}' "$root/docs/language.md")
[ "$doc" = "$synopsis" ] && ok || bad "docs/language.md section 11's synopsis differs from the usage lines:
$(diff <(echo "$doc") <(echo "$synopsis"))"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
