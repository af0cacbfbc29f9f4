#!/usr/bin/env bash
# cmake --install into a fresh prefix, then use only what was installed:
# - the files: bin/migc, lib/migc/libmigc_rt_pic.a, include/migc.h,
#   lib/pkgconfig/migc.pc, share/migc/models/*.mig;
# - the installed migc compiles an installed model (it finds the runtime archive in
#   its own prefix: nothing points it at the build tree);
# - a host built with `pkg-config --cflags --libs migc` alone links that library, and
#   creates and trains the model through the C ABI; examples/train_host.c builds the
#   same way and trains it on MNIST with the library's data reader;
# - migc.pc is relocatable: the prefix moved elsewhere still gives its own include dir.
set -u
migc=$1 root=$2
build=$(cd "$(dirname "$migc")" && pwd)
. "$root/tests/cli_lib.sh"
cli_workdir

cmake --install "$build" --prefix "$work/p" >install.log 2>&1 && ok || bad "cmake --install: $(cat install.log)"
for f in bin/migc lib/migc/libmigc_rt_pic.a include/migc.h lib/pkgconfig/migc.pc \
         share/migc/models/infogan_mnist.mig share/migc/models/infogan_mlp.mig \
         share/migc/python/migc.py; do
  [ -f "p/$f" ] && ok || bad "not installed: $f"
done

# only the prefix: no MIGC_RUNTIME_ARCHIVE (an installed migc looks in ../lib/migc)
env -u MIGC_RUNTIME_ARCHIVE p/bin/migc compile p/share/migc/models/infogan_mlp.mig --batch 4 \
  -o libmlp.so >c.log 2>&1 && ok || bad "installed migc compile: $(cat c.log)"

export PKG_CONFIG_PATH=$work/p/lib/pkgconfig
[ "$(pkg-config --modversion migc)" = "$("$migc" --version | awk '{print $2}')" ] && ok \
  || bad "migc.pc version $(pkg-config --modversion migc), migc $("$migc" --version)"
cat >host.c <<'EOF'
#include <migc.h>
#include <stdio.h>
#include <stdlib.h>
/* links the model directly; every call through the installed header: one training
 * step on a batch of mid-grey images */
int main(void) {
  char err[512];
  migc_model *m = NULL;
  if (migc_abi_version() != MIGC_ABI_VERSION) return 1;
  if (migc_create(7, &m, err, sizeof err) != MIGC_OK) return fprintf(stderr, "%s\n", err), 1;
  migc_input_info x;
  if (migc_input(m, 0, &x) != MIGC_OK || x.kind != MIGC_INPUT_DATA) return 1;
  float *data = malloc((size_t)x.numel * sizeof *data);
  for (int64_t i = 0; i < x.numel; i++) data[i] = (float)((x.a + x.b) / 2);
  float metrics[4];
  migc_status st = migc_train_step(m, data, (size_t)x.numel, NULL, 0, metrics, 4);
  if (st != MIGC_OK) return fprintf(stderr, "%s\n", migc_last_error(m)), 1;
  printf("%s batch %lld step %lld\n", migc_model_name(m), (long long)migc_batch(m),
         (long long)migc_step(m));
  free(data);
  migc_destroy(m);
  return 0;
}
EOF
cc host.c $(pkg-config --cflags --libs migc) -L. -lmlp -Wl,-rpath,"$work" -o host >cc.log 2>&1 && ok \
  || bad "host with pkg-config's flags: $(cat cc.log)"
./host >host.log 2>&1 && grep -q "^infogan_mlp batch 4 step 1$" host.log && ok || bad "host: $(cat host.log)"

# examples/train_host.c, which needs only migc.h, builds from pkg-config's flags and
# trains the library on real MNIST (its data reader is in the library)
cc "$root/examples/train_host.c" $(pkg-config --cflags --libs migc) -o train_host >cc.log 2>&1 && ok \
  || bad "examples/train_host.c with pkg-config's flags: $(cat cc.log)"
./train_host ./libmlp.so --steps 2 --data-dir "$root/data" >th.log 2>&1 \
  && [ "$(grep -c '^step [12]  mi_c' th.log)" = 2 ] && ok || bad "train_host: $(cat th.log)"

# the Python binding, from the prefix alone
PYTHONPATH=$work/p/share/migc/python /usr/bin/python3 -c 'import migc; m = migc.Model("./libmlp.so"); print(m.name, m.batch)' >py.log 2>&1 \
  && [ "$(cat py.log)" = "infogan_mlp 4" ] && ok || bad "installed migc.py: $(cat py.log)"

# relocatable: moved, migc.pc names the new include dir
mv p q
[ "$(PKG_CONFIG_PATH=$work/q/lib/pkgconfig pkg-config --cflags migc)" = "-I$work/q/lib/pkgconfig/../../include " ] \
  && ok || bad "moved prefix: $(PKG_CONFIG_PATH=$work/q/lib/pkgconfig pkg-config --cflags migc)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
