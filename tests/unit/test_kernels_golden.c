/* test_kernels_golden.c: the interpreter's float32 kernels against PyTorch's values in
 * tests/golden-ops: every forward case, and the gradients the adjoint ops compute
 * directly, at rel 1e-5, abs 1e-6 (golden_ops.h says which). */
#include "golden_ops.h"

int main(void) {
  golden_run_all();
  return check_done();
}
