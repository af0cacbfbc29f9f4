/* pool.c: the threads of a training step. One pool per process (per shared object: a
 * compiled model carries its own copy of the runtime): T-1 worker threads plus the
 * thread that calls migc_rt_parallel_for, which works too. OpenBLAS is kept on one
 * thread (migc_rt_set_threads), so the step never has more threads than T, and the
 * GEMMs are split by gemm.c into blocks that run on these threads.
 *
 * A job is nblocks calls fn(ctx, b). Threads claim blocks one at a time, so which
 * thread runs a block is a matter of timing; callers make every block's result
 * independent of that (block boundaries never depend on T), so a step is the same bits
 * for every thread count.
 *
 * Between jobs a worker spins for SPIN_NS (the kernels of a step follow one another
 * within microseconds, and a futex wake-up costs tens of them), then sleeps on a futex
 * until the next job: an idle process burns no core.
 *
 * Claiming: one 64-bit word holds (generation, nblocks, next block). A worker reads fn
 * and ctx, then takes block `next` with a compare-and-swap on the whole word; the swap
 * succeeding proves the job it read fn and ctx for is still the current one (a new job
 * starts only after every block of the last one was claimed and finished, and brings a
 * new generation), so a late worker never runs an old fn on a new job. */
#include "runtime/runtime.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int n);

enum { MAX_THREADS = 256 };
#define SPIN_NS 50000 /* how long an idle thread spins before it sleeps */

typedef struct {
  pthread_t tid[MAX_THREADS];
  int nworkers;                 /* threads - 1 running workers */
  int threads;                  /* what migc_rt_set_threads asked for, clamped */
  pthread_mutex_t submit;       /* one job at a time (several host threads may call) */
  _Atomic(migc_rt_block_fn) fn; /* the current job */
  _Atomic(void *) ctx;
  _Atomic uint64_t claim;       /* gen << 32 | nblocks << 16 ... see pack() */
  _Atomic uint32_t epoch;       /* futex word: bumped for every job and for shutdown */
  _Atomic uint32_t done;        /* blocks finished in the current job (futex word) */
  _Atomic int sleepers;         /* workers asleep on epoch */
  _Atomic int caller_sleeps;    /* the caller waits on done */
  _Atomic bool stop;
  uint32_t gen;                 /* of the last job */
  uint32_t start_epoch;         /* the epoch a new worker starts from */
} pool;

static pool the_pool = {.submit = PTHREAD_MUTEX_INITIALIZER, .threads = 1};

/* claim word: generation (32 bits), block count and next block (16 bits each) */
enum { MAX_BLOCKS = 65535 };
static uint64_t pack(uint32_t gen, uint32_t n, uint32_t next) {
  return (uint64_t)gen << 32 | (uint64_t)n << 16 | next;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Runs blocks of the current job until none is left. */
static void run_blocks(pool *p) {
  for (;;) {
    uint64_t w = atomic_load_explicit(&p->claim, memory_order_acquire);
    uint32_t n = (uint32_t)(w >> 16) & 0xffff, next = (uint32_t)w & 0xffff;
    if (next >= n) return;
    migc_rt_block_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
    if (!atomic_compare_exchange_weak_explicit(&p->claim, &w, w + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    fn(ctx, (int64_t)next);
    uint32_t d = atomic_fetch_add(&p->done, 1) + 1; /* seq_cst: against caller_sleeps */
    if (d == n && atomic_load(&p->caller_sleeps)) futex(&p->done, FUTEX_WAKE, INT_MAX);
  }
}

static void *worker(void *arg) {
  pool *p = arg;
  uint32_t seen = p->start_epoch; /* set before pthread_create: the next job wakes it */
  for (;;) {
    int64_t t0 = now_ns();
    int spins = 0;
    uint32_t e;
    while ((e = atomic_load_explicit(&p->epoch, memory_order_acquire)) == seen) {
      cpu_relax();
      if (++spins % 64 == 0 && now_ns() - t0 > SPIN_NS) {
        atomic_fetch_add(&p->sleepers, 1);
        futex(&p->epoch, FUTEX_WAIT, seen); /* returns at once if epoch moved */
        atomic_fetch_sub(&p->sleepers, 1);
        t0 = now_ns();
      }
    }
    seen = e;
    if (atomic_load(&p->stop)) return NULL;
    run_blocks(p);
  }
}

static void stop_workers(pool *p) {
  if (!p->nworkers) return;
  atomic_store(&p->stop, true);
  atomic_fetch_add(&p->epoch, 1);
  futex(&p->epoch, FUTEX_WAKE, INT_MAX);
  for (int k = 0; k < p->nworkers; k++) pthread_join(p->tid[k], NULL);
  p->nworkers = 0;
  atomic_store(&p->stop, false);
}

static void at_exit(void) {
  pthread_mutex_lock(&the_pool.submit);
  stop_workers(&the_pool);
  pthread_mutex_unlock(&the_pool.submit);
}

int migc_rt_set_threads(int n) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (n <= 0 || n > cores) n = (int)cores; /* never more threads than cores */
  if (n > MAX_THREADS) n = MAX_THREADS;
  openblas_set_num_threads(1); /* GEMMs run on these threads, split by gemm.c */
  pool *p = &the_pool;
  pthread_mutex_lock(&p->submit);
  if (n != p->threads) {
    stop_workers(p); /* started again, n-1 of them, by the next job */
    p->threads = n;
  }
  pthread_mutex_unlock(&p->submit);
  return n;
}

int migc_rt_threads(void) { return the_pool.threads; }

/* Starts the workers the thread count asks for; with p->submit held. */
static void start_workers(pool *p) {
  static bool registered;
  if (!registered) registered = atexit(at_exit) == 0;
  p->start_epoch = atomic_load(&p->epoch);
  while (p->nworkers < p->threads - 1) {
    if (pthread_create(&p->tid[p->nworkers], NULL, worker, p)) break; /* fewer is fine */
    p->nworkers++;
  }
}

void migc_rt_parallel_for(migc_rt_block_fn fn, void *ctx, int64_t nblocks) {
  pool *p = &the_pool;
  /* inline: one block, one thread, too many blocks for the claim word, or a job
   * running: a call from inside a block (nested), or another host thread's (results do
   * not depend on it). No thread-local flag: TLS would make a model's shared object
   * need the dynamic loader's __tls_get_addr. */
  if (nblocks <= 1 || p->threads <= 1 || nblocks > MAX_BLOCKS ||
      pthread_mutex_trylock(&p->submit)) {
    for (int64_t b = 0; b < nblocks; b++) fn(ctx, b);
    return;
  }
  if (p->nworkers < p->threads - 1) start_workers(p);
  if (!p->nworkers) {
    pthread_mutex_unlock(&p->submit);
    for (int64_t b = 0; b < nblocks; b++) fn(ctx, b);
    return;
  }
  uint32_t n = (uint32_t)nblocks;
  atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
  atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store_explicit(&p->claim, pack(++p->gen, n, 0), memory_order_release);
  atomic_fetch_add(&p->epoch, 1);
  if (atomic_load(&p->sleepers)) futex(&p->epoch, FUTEX_WAKE, INT_MAX);
  run_blocks(p);
  /* wait for the blocks other threads took: spin, then sleep until the last is done */
  int64_t t0 = now_ns();
  int spins = 0;
  uint32_t d;
  while ((d = atomic_load_explicit(&p->done, memory_order_acquire)) != n) {
    cpu_relax();
    if (++spins % 64 == 0 && now_ns() - t0 > SPIN_NS) {
      atomic_store(&p->caller_sleeps, 1);
      d = atomic_load(&p->done);
      if (d != n) futex(&p->done, FUTEX_WAIT, d);
      atomic_store(&p->caller_sleeps, 0);
    }
  }
  pthread_mutex_unlock(&p->submit);
}
