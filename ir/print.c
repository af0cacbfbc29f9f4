/* print.c: the text form of a module, as `migc dump --ir` shows it. It is stable
 * (no addresses, no hash order) so golden tests can compare it byte for byte. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static const char *dtype_name(ir_dtype t) { return t == IR_I32 ? "i32" : "f32"; }

static void type_str(ir_dtype t, ir_shape s, char *buf, size_t n) {
  char sh[128];
  shape_str(s, sh, sizeof sh);
  snprintf(buf, n, "%s%s", dtype_name(t), sh);
}

static const char *var_kind_name(ir_var_kind k) {
  static const char *names[] = {"param", "bn_mean", "bn_var", "opt_m", "opt_v", "step", "ema"};
  return names[k];
}

static void print_init(const ir_init *in, FILE *out) {
  switch (in->kind) {
  case INIT_DEFAULT: fprintf(out, "default(fan_in=%lld)", (long long)in->fan_in); break;
  case INIT_ZEROS: fputs("zeros", out); break;
  case INIT_ONES: fputs("ones", out); break;
  case INIT_UNIFORM: fprintf(out, "uniform(%g, %g)", in->a, in->b); break;
  case INIT_NORMAL: fprintf(out, "normal(%g, %g)", in->a, in->b); break;
  }
}

static void print_input(const ir_input *in, FILE *out) {
  static const char *kinds[] = {"data", "latent", "code", "seed", "labels"};
  char ty[160];
  type_str(in->dtype, in->shape, ty, sizeof ty);
  fprintf(out, "  %-8s %-6s %-18s", in->name, kinds[in->kind], ty);
  switch (in->dist) {
  case DIST_NONE:
    if (in->kind == INPUT_DATA) fprintf(out, " range [%g, %g]", in->a, in->b);
    if (in->pad) fprintf(out, " pad %lld", (long long)in->pad);
    break;
  case DIST_UNIFORM: fprintf(out, " uniform(%g, %g)", in->a, in->b); break;
  case DIST_NORMAL: fprintf(out, " normal(%g, %g)", in->a, in->b); break;
  case DIST_CATEGORICAL: fprintf(out, " categorical(%g)", in->a); break;
  case DIST_BERNOULLI: fprintf(out, " bernoulli(%g)", in->a); break;
  }
  fputc('\n', out);
}

static void print_attrs(const ir_node *n, FILE *out) {
  const ir_op_info *op = &ir_ops[n->op];
  if (op->nattrs == 0) return;
  fputs(" {", out);
  for (int a = 0; a < op->nattrs; a++) {
    const ir_attr_desc *d = &op->attrs[a];
    if (d->if_set && n->i[d->slot] == 0) continue;
    if (a) fputs(", ", out);
    fprintf(out, "%s=", d->name);
    if (d->kind == ATTR_FLOAT) {
      fprintf(out, "%g", n->f[d->slot]);
    } else if (d->kind == ATTR_AXES) {
      fputc('[', out);
      bool first = true;
      for (int b = 0; b < IR_MAX_RANK; b++)
        if (n->i[d->slot] >> b & 1) {
          fprintf(out, first ? "%d" : ",%d", b);
          first = false;
        }
      fputc(']', out);
    } else {
      fprintf(out, "%lld", (long long)n->i[d->slot]);
    }
  }
  fputc('}', out);
}

static void print_node(const ir_module *m, const ir_func *f, int id, FILE *out) {
  const ir_node *n = &f->nodes[id];
  char line[512];
  FILE *s = fmemopen(line, sizeof line, "w");
  if (n->op == IR_OP_STORE) {
    fprintf(s, "  store @%s, %%%d", m->vars[n->var].name, n->in[0]);
  } else {
    fprintf(s, "  %%%d = %s", id, ir_ops[n->op].name);
    if (n->op == IR_OP_INPUT)
      fprintf(s, " %s", m->inputs[f->inputs[n->i[0]]].name);
    else if (n->op == IR_OP_LOAD)
      fprintf(s, " @%s", m->vars[n->var].name);
    for (int j = 0; j < n->nin; j++) fprintf(s, "%s%%%d", j ? ", " : " ", ir_operand(n, j));
    if (n->op != IR_OP_INPUT) print_attrs(n, s);
  }
  fclose(s);
  line[sizeof line - 1] = 0;
  char ty[160];
  type_str(n->dtype, n->shape, ty, sizeof ty);
  fprintf(out, "%-52s %-18s", line, ty);
  if (n->label || n->span.file) {
    fputs(" ;", out);
    if (n->label) fprintf(out, " %s", n->label);
    if (n->span.file) fprintf(out, " @%d:%d", n->span.line, n->span.col);
  }
  fputc('\n', out);
}

static void print_optim(const ir_optim *o, FILE *out) {
  if (o->kind == OPT_ADAM)
    fprintf(out, "adam(lr=%g, beta1=%g, beta2=%g, eps=%g, weight_decay=%g", o->lr, o->beta1,
            o->beta2, o->eps, o->weight_decay);
  else
    fprintf(out, "sgd(lr=%g, momentum=%g, weight_decay=%g", o->lr, o->momentum,
            o->weight_decay);
  /* only what differs from a constant rate, so programs without a schedule print as
   * they always did */
  if (o->sched != SCHED_CONSTANT)
    fprintf(out, ", schedule=%s(%g, end=%g)", o->sched == SCHED_LINEAR ? "linear" : "cosine",
            o->sched_steps, o->sched_end);
  if (o->warmup > 0) fprintf(out, ", warmup=%g", o->warmup);
  if (o->ema > 0) fprintf(out, ", ema=%g", o->ema);
  if (o->every > 1) fprintf(out, ", every=%g", o->every);
  fputc(')', out);
}

void ir_print_func(const ir_module *m, const ir_func *f, FILE *out) {
  fprintf(out, "func %s(", f->name);
  for (int j = 0; j < f->ninputs; j++)
    fprintf(out, "%s%s", j ? ", " : "", m->inputs[f->inputs[j]].name);
  fprintf(out, ")%s {\n", f->training ? " training" : "");
  for (int b = 0; b < f->nblocks; b++) {
    bool has_step = false;
    for (int st = 0; st < f->nsteps; st++) has_step |= f->steps[st].block == b;
    if (f->nsteps) {
      fprintf(out, "block %d:", b);
      for (int st = 0; st < f->nsteps; st++) {
        const ir_step *p = &f->steps[st];
        if (p->block != b) continue;
        fprintf(out, " step %s minimizes %%%d over", p->name, p->loss);
        for (int j = 0; j < p->nnets; j++)
          fprintf(out, "%s %s", j ? "," : "", m->nets[p->nets[j]]);
        fputs(" with ", out);
        print_optim(&p->opt, out);
        if (p->lowered) fputs(" (lowered)", out);
      }
      if (!has_step) fputs(" after the last step", out);
      fputc('\n', out);
    }
    for (int id = 0; id < f->nnodes; id++)
      if (f->nodes[id].block == b) print_node(m, f, id, out);
  }
  fputs("outputs\n", out);
  for (int k = 0; k < f->noutputs; k++)
    fprintf(out, "  %s = %%%d\n", f->outputs[k].name, f->outputs[k].node);
  fputs("}\n", out);
}

void ir_print_module(const ir_module *m, FILE *out) {
  fprintf(out, "module %s batch %lld\n", m->name, (long long)m->batch);
  fputs("nets", out);
  for (int i = 0; i < m->nnets; i++) fprintf(out, " %s", m->nets[i]);
  fprintf(out, "\n\nstate %lld elements\n", (long long)m->state_size);
  for (int i = 0; i < m->nvars; i++) {
    const ir_var *v = &m->vars[i];
    char ty[160];
    type_str(v->dtype, v->shape, ty, sizeof ty);
    fprintf(out, "  @%-28s %-7s %-18s +%-9lld ", v->name, var_kind_name(v->kind), ty,
            (long long)v->offset);
    if (v->kind == VAR_PARAM)
      print_init(&v->init, out);
    else if (v->of >= 0)
      fprintf(out, "of @%s", m->vars[v->of].name);
    fputc('\n', out);
  }
  fputs("\ninputs\n", out);
  for (int i = 0; i < m->ninputs; i++) print_input(&m->inputs[i], out);
  for (int i = 0; i < m->nfuncs; i++) {
    fputc('\n', out);
    ir_print_func(m, m->funcs[i], out);
  }
}
