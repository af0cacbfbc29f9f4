#!/usr/bin/env bash
# runtime/ ships inside every compiled model (libmigc_rt_pic.a) and must stand alone
# (issue 18): no runtime file includes a header of another layer, and no symbol the
# runtime archives leave undefined is one that ir/, frontend/, passes/ or codegen/
# define. (runtime/dataset.c once had a shape_str of its own beside ir's.)
set -u
migc=$1 root=$2
build=$(dirname "$migc")
. "$root/tests/cli_lib.sh"

inc=$(grep -Hn '^#include "' "$root"/runtime/*.[ch] | grep -v '#include "runtime/')
[ -z "$inc" ] && ok || bad "runtime includes other layers: $inc"

defined() { nm --defined-only "$@" 2>/dev/null | awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' | sort -u; }
for lib in libmigc_runtime.a libmigc_rt_pic.a; do
  undef=$(nm -u "$build/$lib" | awk '{print $NF}' | sort -u | comm -23 - <(defined "$build/$lib"))
  other=$(comm -12 <(echo "$undef") \
    <(defined "$build"/libmigc_ir.a "$build"/libmigc_frontend.a "$build"/libmigc_passes.a \
      "$build"/libmigc_codegen.a))
  [ -z "$other" ] && ok || bad "$lib needs symbols of other layers: $other"
done
# the check sees a dependency: ir/ needs the runtime's symbols
[ -n "$(nm -u "$build/libmigc_ir.a" | awk '{print $NF}' | sort -u | comm -12 - <(defined "$build/libmigc_runtime.a"))" ] \
  && ok || bad "the check cannot see ir/'s use of the runtime"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
