#!/usr/bin/env bash
# Two compiled models in one process (issue 18): infogan_mlp at batch 8 and a smaller
# variant (another name, a 32-wide hidden layer, batch 4), both loaded RTLD_GLOBAL, by
# a C host (so_two_models.c) and by Python ctypes (so_two_models.py), in both orders.
# Each library must report its own name, batch, state size and hash, and train and
# generate as it does alone in a process: the library binds its own symbols
# (-Wl,-Bsymbolic, docs/abi.md), not the first loaded library's.
set -u
migc=$1 root=$2
. "$root/tests/cli_lib.sh"
cli_workdir
here=$root/tests/cli

sed -e 's/^model infogan_mlp$/model mlp_small/' -e 's/relu(dense(h, 256))/relu(dense(h, 32))/' \
  "$root/models/infogan_mlp.mig" >small.mig
"$migc" compile "$root/models/infogan_mlp.mig" --batch 8 -o "$PWD/libmlp.so" >c.log 2>&1 \
  && "$migc" compile small.mig --batch 4 -o "$PWD/libsmall.so" >>c.log 2>&1 && ok \
  || { bad "compile: $(cat c.log)"; echo "$pass passed, $fail failed"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror -I"$root/runtime" "$here/so_two_models.c" -o host -ldl \
  >cc.log 2>&1 && ok || bad "host does not compile: $(cat cc.log)"

# the truth: each library alone; the names, batches and sizes are the headers'
./host alone "$PWD/libmlp.so" "$PWD/libsmall.so" >alone.txt 2>&1 || bad "alone: $(cat alone.txt)"
# NAME.h says what the library is: "NAME batch B state S hash H"
header() {
  echo "state $(sed -n "s/#define $1_STATE_SIZE \([0-9]*\).*/\1/p" "$2")" \
    "hash $(sed -n "s/#define $1_PROGRAM_HASH 0x\([0-9a-f]*\)ULL.*/\1/p" "$2") "
}
grep -q "^infogan_mlp batch 8 $(header MLP mlp.h)" alone.txt && ok || bad "libmlp.so alone: $(cat alone.txt)"
grep -q "^mlp_small batch 4 $(header SMALL small.h)" alone.txt && ok || bad "libsmall.so alone: $(cat alone.txt)"
[ "$(wc -l <alone.txt)" = 2 ] && [ "$(cut -d' ' -f1 alone.txt | sort -u | wc -l)" = 2 ] && ok \
  || bad "alone: $(cat alone.txt)"
tac alone.txt >alone-rev.txt

# both at once, RTLD_GLOBAL, in both orders
./host global "$PWD/libmlp.so" "$PWD/libsmall.so" >g.txt 2>&1
diff alone.txt g.txt >d.txt && ok || bad "C host, RTLD_GLOBAL: $(cat d.txt)"
./host global "$PWD/libsmall.so" "$PWD/libmlp.so" >g.txt 2>&1
diff alone-rev.txt g.txt >d.txt && ok || bad "C host, RTLD_GLOBAL, other order: $(cat d.txt)"
/usr/bin/python3 "$here/so_two_models.py" "$PWD/libmlp.so" "$PWD/libsmall.so" >p.txt 2>&1
diff alone.txt p.txt >d.txt && ok || bad "ctypes, RTLD_GLOBAL: $(cat d.txt)"
/usr/bin/python3 "$here/so_two_models.py" "$PWD/libsmall.so" "$PWD/libmlp.so" >p.txt 2>&1
diff alone-rev.txt p.txt >d.txt && ok || bad "ctypes, RTLD_GLOBAL, other order: $(cat d.txt)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
