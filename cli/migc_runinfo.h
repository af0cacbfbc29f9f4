/* migc_runinfo.h: RUN/run.json, what a run was trained on and how it was started, so
 * that the commands that reopen a run (eval) default to the same data and settings. */
#ifndef MIGC_CLI_RUNINFO_H
#define MIGC_CLI_RUNINFO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *model, *model_file, *settings; /* settings: the -D text, as checkpoints hold */
  const char *data, *data_dir;               /* as given to train (NULL: mnist, data) */
  int64_t batch;
  uint64_t seed;
  int threads;
} runinfo;

/* Writes dir/run.json atomically; 0, or 1 with a message naming the file. */
int runinfo_write(const char *dir, const runinfo *r, char *err, size_t errn);

/* From the run.json of `run` (a run directory, or a checkpoint inside its
 * checkpoints/), the training data set and data dir, into data and dir (empty when
 * run.json does not say). 0 when read; 1 when there is none (runs of older migc),
 * and 2 with a message naming the file when it is there but damaged. */
int runinfo_read_data(const char *run, char *data, size_t datan, char *dir, size_t dirn,
                      char *err, size_t errn);

/* Calls fn(ctx, key, value) for each member of run's run.json in its order (numbers
 * as whole numbers, other values as JSON text); the return codes of runinfo_read_data. */
int runinfo_each(const char *run, void (*fn)(void *ctx, const char *key, const char *value),
                 void *ctx, char *err, size_t errn);

/* Reads path (at most 64 KiB) as one JSON object into *out (json_free it): 0; 1 when
 * there is no such file; 2 with a message naming the file and `what` it should be
 * when it does not hold a JSON object. */
struct json_value;
int runinfo_json_file(const char *path, const char *what, struct json_value **out, char *err,
                      size_t errn);

/* The labelled test split of a known training set (mnist -> mnist-test, fashion ->
 * fashion-test); a test split is its own. NULL for any other data. */
const char *runinfo_test_split(const char *data);

#endif
