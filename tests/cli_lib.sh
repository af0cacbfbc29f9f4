# cli_lib.sh: what the tests/cli scripts share, sourced once `root` (the repository)
# is set: pass/fail counters with ok and bad, and cli_workdir, which moves into a
# fresh directory, removed on exit, whose data/ is the repository's. (It lives
# outside tests/cli/, where every *.sh is a test.)
fail=0 pass=0
ok()  { pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }

cli_workdir() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work" || exit 1
  ln -s "$root/data" data
}
