/* fuzz_frontend.c: the whole frontend on arbitrary bytes, as `migc check` runs it:
 * lex and parse, elaborate (resolve names, inline nets, infer shapes, lower to IR),
 * verify, then every pass with the verifier after each. Any input must end in IR that
 * verifies or in at least one error, never in a crash, a leak or undefined behaviour. */
#include "frontend/frontend.h"
#include "passes/passes.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_string(data, size);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_source(&d, "fuzz.mig", text);
  ir_module *m = NULL;
  /* a memory limit, as migc sets one, so that its check runs too */
  elab_options eo = {.max_bytes = (int64_t)1 << 30};
  if (ast && d.nerrors == 0) m = elaborate(ast, &eo, &d);
  if (m) {
    if (!ir_verify(m, &d)) abort(); /* elaboration built IR that does not verify */
    pass_options po = {.verify_each = true};
    if (passes_run(m, &po, &d) != 0 && d.nerrors == 0) abort(); /* failed silently */
  } else if (d.nerrors == 0) {
    abort(); /* refused without saying why */
  }
  ir_module_free(m);
  if (ast) ast_free(ast);
  diag_free(&d);
  free(text);
  return 0;
}
