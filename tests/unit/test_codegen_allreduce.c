/* test_codegen_allreduce.c: the data-parallel program (passes/allreduce.c, the op
 * `allreduce`, its interpreter kernel and its lowering) in one process, with a stand-in
 * transport that plays N identical processes: it multiplies the buffer by N, which is
 * what summing N equal buffers gives, exactly in float for N a power of two. Then each
 * step's averaged gradient is its own gradient bit for bit, so
 * - the ranks=2 program's training step leaves exactly the state the ranks=1 program
 *   leaves, on the interpreter and on native code (each against itself);
 * - the transport is called once per optimisation step, with all of that step's
 *   gradients: as many elements as the parameters of the nets the step trains;
 * - in the IR, each step's block holds one allreduce, and every store of that block
 *   (the optimizer's updates of parameters and moments) comes after it.
 * The ranks=1 program contains no allreduce at all. And the ranks=2 step with no
 * transport installed (one process) divides each gradient by 2 with nothing added,
 * which must move the parameters differently: the op is really on the update's path. */
#include "check.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define RANKS 2

static int calls;
static int64_t sizes[16];

static void mirror_sum(float *buf, int64_t n, void *ctx) {
  (void)ctx;
  if (calls < 16) sizes[calls] = n;
  calls++;
  for (int64_t i = 0; i < n; i++) buf[i] *= RANKS;
}

static ir_module *compile_ir(int ranks) {
  char path[512];
  snprintf(path, sizeof path, "%s/models/infogan_mlp.mig", MIGC_SOURCE_DIR);
  diag_sink d;
  diag_init(&d);
  ast_file *ast = parse_file(&d, path);
  elab_options eo = {.batch = 8};
  ir_module *m = ast && !d.nerrors ? elaborate(ast, &eo, &d) : NULL;
  if (m) {
    m->ranks = ranks;
    pass_options po = {.verify_each = true};
    if (passes_run(m, &po, &d)) {
      ir_module_free(m);
      m = NULL;
    }
  }
  if (!m) diag_print(&d, stderr, false);
  CHECK_MSG(m != NULL, "%s does not compile for %d ranks", path, ranks);
  if (ast) ast_free(ast);
  diag_free(&d);
  return m;
}

/* The inputs of train_step for a seed: data and latents uniform in their ranges,
 * codes in [0, K), the dropout seed (seed, 0). */
static ir_tensor *inputs(const ir_module *m, const ir_func *f, uint64_t seed) {
  ir_tensor *in = calloc((size_t)f->ninputs, sizeof *in);
  for (int j = 0; j < f->ninputs; j++) {
    const ir_input *inp = &m->inputs[f->inputs[j]];
    in[j] = ir_tensor_alloc(inp->dtype, inp->shape);
    for (int64_t i = 0; i < shape_numel(inp->shape); i++) {
      float u = rng_uniform(seed, RNG_STREAM_LATENT, (uint64_t)j, (uint64_t)i);
      if (inp->dtype == IR_I32)
        ((int32_t *)in[j].data)[i] = inp->kind == INPUT_SEED ? (i == 0 ? (int32_t)seed : 0)
                                                             : (int32_t)(u * inp->a);
      else
        ((float *)in[j].data)[i] = inp->kind == INPUT_DATA ? u : 2 * u - 1;
    }
  }
  return in;
}

/* One training step from the initial state of seed 7; returns the state after it. */
static float *one_step(ir_module *m, bool native) {
  ir_func *f = ir_find_func(m, "train_step");
  float *state = calloc((size_t)m->state_size + 1, sizeof *state);
  ir_init_state(m, state, 7);
  ir_tensor *in = inputs(m, f, 3);
  ir_tensor out[8];
  if (!native) {
    ir_interp it = {.m = m, .state = state};
    CHECK_MSG(ir_interp_run(&it, f, in, out) == 0, "%s", it.err);
    for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&out[k]);
  } else {
    char err[512];
    cg_program *p = cg_compile(m, NULL, err, sizeof err);
    CHECK_MSG(p != NULL, "%s", err);
    if (p) {
      void *ip[8], *op[8];
      for (int j = 0; j < f->ninputs; j++) ip[j] = in[j].data;
      for (int k = 0; k < f->noutputs; k++) {
        out[k] = ir_tensor_alloc(IR_F32, f->nodes[f->outputs[k].node].shape);
        op[k] = out[k].data;
      }
      void *scratch = aligned_alloc(64, (cg_scratch_size(p, "train_step") + 63) / 64 * 64 + 64);
      CHECK(cg_lookup(p, "train_step")(state, ip, op, scratch) == 0);
      free(scratch);
      for (int k = 0; k < f->noutputs; k++) ir_tensor_free(&out[k]);
      cg_free(p);
    }
  }
  for (int j = 0; j < f->ninputs; j++) ir_tensor_free(&in[j]);
  free(in);
  return state;
}

/* Elements of the parameters step s trains. */
static int64_t trained_elements(const ir_module *m, const ir_step *st) {
  int64_t n = 0;
  for (int v = 0; v < m->nvars; v++) {
    if (m->vars[v].kind != VAR_PARAM) continue;
    for (int j = 0; j < st->nnets; j++)
      if (m->vars[v].net == st->nets[j]) n += shape_numel(m->vars[v].shape);
  }
  return n;
}

static int count_allreduce(const ir_func *f) {
  int n = 0;
  for (int id = 0; id < f->nnodes; id++) n += f->nodes[id].op == IR_OP_ALLREDUCE;
  return n;
}

static void check_ir(const ir_module *m) {
  const ir_func *f = ir_find_func(m, "train_step");
  CHECK(count_allreduce(f) == f->nsteps);
  for (int s = 0; s < f->nsteps; s++) {
    int b = f->steps[s].block, at = -1, found = 0;
    for (int id = 0; id < f->nnodes; id++)
      if (f->nodes[id].block == b && f->nodes[id].op == IR_OP_ALLREDUCE) at = id, found++;
    CHECK_MSG(found == 1, "step %s: %d allreduce nodes", f->steps[s].name, found);
    CHECK(at >= 0 && f->nodes[at].f[0] == 1.0 / RANKS);
    CHECK(at >= 0 && shape_numel(f->nodes[at].shape) == trained_elements(m, &f->steps[s]));
    for (int id = 0; id < f->nnodes; id++)
      if (f->nodes[id].block == b && f->nodes[id].op == IR_OP_STORE)
        CHECK_MSG(id > at, "step %s: store of %s (%%%d) before the allreduce (%%%d)",
                  f->steps[s].name, m->vars[f->nodes[id].var].name, id, at);
  }
}

int main(void) {
  ir_module *one = compile_ir(1), *two = compile_ir(RANKS);
  if (!one || !two) return check_done();
  CHECK(count_allreduce(ir_find_func(one, "train_step")) == 0);
  check_ir(two);
  const ir_func *f = ir_find_func(two, "train_step");
  for (int native = 0; native < 2; native++) {
    const char *backend = native ? "native" : "interpreter";
    float *ref = one_step(one, native);
    collective_install(mirror_sum, NULL, RANKS, 0);
    calls = 0;
    float *got = one_step(two, native);
    collective_install(NULL, NULL, 1, 0);
    CHECK_MSG(calls == f->nsteps, "%s: %d transport calls, want %d", backend, calls, f->nsteps);
    for (int s = 0; s < f->nsteps && s < calls; s++)
      CHECK_MSG(sizes[s] == trained_elements(two, &f->steps[s]), "%s: step %s sent %lld",
                backend, f->steps[s].name, (long long)sizes[s]);
    CHECK(one->state_size == two->state_size);
    CHECK_MSG(memcmp(ref, got, (size_t)one->state_size * sizeof *ref) == 0,
              "%s: the ranks=%d step does not leave the ranks=1 state", backend, RANKS);
    /* no transport: each gradient is halved, so the update differs */
    calls = 0;
    float *alone = one_step(two, native);
    CHECK(calls == 0);
    CHECK_MSG(memcmp(ref, alone, (size_t)one->state_size * sizeof *ref) != 0,
              "%s: halving the gradients changed nothing", backend);
    free(ref);
    free(got);
    free(alone);
  }
  ir_module_free(one);
  ir_module_free(two);
  return check_done();
}
