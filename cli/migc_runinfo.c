/* migc_runinfo.c: RUN/run.json (see migc_runinfo.h). */
#include "migc_runinfo.h"

#include "runtime/json.h"
#include "runtime/runtime.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool put_field(char **b, size_t *n, size_t *cap, const char *key, const char *val,
                      bool first) {
  return json_put(b, n, cap, first ? "{\n  " : ",\n  ") && json_put_string(b, n, cap, key) &&
         json_put(b, n, cap, ": ") && json_put_string(b, n, cap, val ? val : "");
}

static bool put_number(char **b, size_t *n, size_t *cap, const char *key, unsigned long long v) {
  char num[32];
  snprintf(num, sizeof num, "%llu", v);
  return json_put(b, n, cap, ",\n  ") && json_put_string(b, n, cap, key) &&
         json_put(b, n, cap, ": ") && json_put(b, n, cap, num);
}

int runinfo_write(const char *dir, const runinfo *r, char *err, size_t errn) {
  char path[1200], *b = NULL;
  size_t n = 0, cap = 0;
  snprintf(path, sizeof path, "%s/run.json", dir);
  bool ok = put_field(&b, &n, &cap, "format", "migc run 1", true) &&
            put_field(&b, &n, &cap, "model", r->model, false) &&
            put_field(&b, &n, &cap, "model_file", r->model_file, false) &&
            put_field(&b, &n, &cap, "settings", r->settings, false) &&
            put_field(&b, &n, &cap, "data", r->data ? r->data : "mnist", false) &&
            put_field(&b, &n, &cap, "data_dir", r->data_dir ? r->data_dir : "data", false) &&
            put_number(&b, &n, &cap, "batch", (unsigned long long)r->batch) &&
            put_number(&b, &n, &cap, "seed", (unsigned long long)r->seed) &&
            put_number(&b, &n, &cap, "threads", (unsigned long long)r->threads) &&
            put_field(&b, &n, &cap, "migc", MIGC_VERSION, false) && json_put(&b, &n, &cap, "\n}\n");
  int st = ok ? 0 : file_fail(err, errn, path, "out of memory");
  if (!st) {
    const void *parts[] = {b};
    st = file_write_atomic(path, parts, &n, 1, err, errn);
  }
  free(b);
  return st;
}

/* run.json of a run directory, or of the run a checkpoint RUN/checkpoints/X is in */
static void runinfo_path(const char *run, char *path, size_t n) {
  size_t len = strlen(run);
  const char *slash = strrchr(run, '/');
  bool file = len > 12 && !strcmp(run + len - 12, ".safetensors");
  if (!file) {
    snprintf(path, n, "%s/run.json", run);
    return;
  }
  /* DIR/checkpoints/step-N.safetensors -> DIR/run.json; a lone file: its directory's */
  int dirlen = slash ? (int)(slash - run) : 0;
  const char *up = dirlen >= 11 && !strncmp(run + dirlen - 11, "checkpoints", 11) &&
                           (dirlen == 11 || run[dirlen - 12] == '/')
                       ? run + dirlen - 11
                       : run + dirlen;
  int keep = (int)(up - run);
  snprintf(path, n, "%.*s%srun.json", keep, run, keep && run[keep - 1] != '/' ? "/" : "");
}

/* run.json parsed: 0 with *out, 1 when there is none, 2 with a message when damaged */
static int read_json(const char *run, json_value **out, char *err, size_t errn) {
  char path[1200];
  runinfo_path(run, path, sizeof path);
  return runinfo_json_file(path, "migc run record", out, err, errn);
}

int runinfo_json_file(const char *path, const char *what, json_value **out, char *err,
                      size_t errn) {
  *out = NULL;
  FILE *fp = fopen(path, "rb");
  if (!fp) return 1;
  char text[65536];
  size_t len = fread(text, 1, sizeof text, fp);
  bool whole = feof(fp) && !ferror(fp);
  fclose(fp);
  size_t at;
  bool trailing, deep;
  json_value *v = whole ? json_parse(text, len, &at, &trailing, &deep) : NULL;
  if (!v || v->type != JSON_OBJECT) {
    json_free(v);
    char why[128];
    snprintf(why, sizeof why, "not a %s (damaged JSON)", what);
    return 2 * file_fail(err, errn, path, why);
  }
  *out = v;
  return 0;
}

int runinfo_each(const char *run, void (*fn)(void *ctx, const char *key, const char *value),
                 void *ctx, char *err, size_t errn) {
  json_value *v = NULL;
  int st = read_json(run, &v, err, errn);
  for (json_value *m = st ? NULL : v->child; m; m = m->next) {
    char num[64];
    if (m->type == JSON_NUMBER) snprintf(num, sizeof num, "%.0f", m->num);
    fn(ctx, m->key, m->type == JSON_STRING ? m->str : m->type == JSON_NUMBER ? num : "?");
  }
  json_free(v);
  return st;
}

typedef struct {
  char *data, *dir;
  size_t datan, dirn;
} data_fields;

static void take_data(void *ctx, const char *key, const char *value) {
  data_fields *d = ctx;
  if (!strcmp(key, "data")) snprintf(d->data, d->datan, "%s", value);
  if (!strcmp(key, "data_dir")) snprintf(d->dir, d->dirn, "%s", value);
}

int runinfo_read_data(const char *run, char *data, size_t datan, char *dir, size_t dirn,
                      char *err, size_t errn) {
  data_fields d = {data, dir, datan, dirn};
  data[0] = dir[0] = 0;
  return runinfo_each(run, take_data, &d, err, errn);
}

const char *runinfo_test_split(const char *data) {
  static const char *const splits[][2] = {{"mnist", "mnist-test"}, {"fashion", "fashion-test"},
                                          {"mnist-test", "mnist-test"},
                                          {"fashion-test", "fashion-test"}};
  for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
    if (data && !strcmp(data, splits[i][0])) return splits[i][1];
  return NULL;
}
