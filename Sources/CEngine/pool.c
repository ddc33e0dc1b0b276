/* The process's one thread pool: workers wait on a condition variable between jobs (after a
 * short spin), claim parts with an atomic counter, and the caller works too. */
#define _GNU_SOURCE
#include "pixconv_engine.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sched.h>

#define PE_MAX_THREADS 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static int wanted = 0;        /* threads asked for (0: not set yet) */
static int started = 0;       /* workers running */
static _Atomic uint64_t generation = 0;
static pe_task_fn job_fn;
static void *job_ctx;
static int64_t job_parts;
static _Atomic int64_t next_part;
static _Atomic int active;    /* workers still inside the current job */
static int job_helpers;      /* workers with an index below this take parts */
static uint64_t start_generation[PE_MAX_THREADS];
static _Thread_local int in_task = 0;

void openblas_set_num_threads(int threads); /* OpenBLAS runs inside our tasks, on one thread */

static int cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0 && (n <= 0 || c < n)) n = c;
    }
    return n < 1 ? 1 : (n > PE_MAX_THREADS ? PE_MAX_THREADS : (int)n);
}

static void work(pe_task_fn fn, void *ctx, int64_t parts) {
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&next_part, 1, memory_order_relaxed);
        if (i >= parts) break;
        fn(ctx, i);
    }
}

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg;
    in_task = 1;
    uint64_t seen = start_generation[index];
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen && spins < 20000) {
            spins++;
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
        if (g == seen) {
            pthread_mutex_lock(&lock);
            while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) pthread_cond_wait(&wake, &lock);
            pthread_mutex_unlock(&lock);
        }
        seen = g;
        pthread_mutex_lock(&lock);
        pe_task_fn fn = job_fn;
        void *ctx = job_ctx;
        int64_t parts = job_parts;
        int take = index < job_helpers;
        pthread_mutex_unlock(&lock);
        if (take) work(fn, ctx, parts);
        if (atomic_fetch_sub_explicit(&active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&lock);
            pthread_cond_signal(&done_cv);
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

void pe_set_threads(int threads) {
    pthread_mutex_lock(&run_lock);
    int n = threads <= 0 ? cores() : (threads > PE_MAX_THREADS ? PE_MAX_THREADS : threads);
    /* workers are never stopped: asking for fewer leaves the extra ones idle */
    pthread_mutex_lock(&lock);
    wanted = n;
    openblas_set_num_threads(1);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&run_lock);
}

int pe_threads(void) {
    pthread_mutex_lock(&lock);
    if (wanted == 0) {
        wanted = cores();
        openblas_set_num_threads(1);
    }
    int n = wanted;
    pthread_mutex_unlock(&lock);
    return n;
}

void pe_pool_run(pe_task_fn fn, void *ctx, int64_t parts) {
    if (parts <= 0) return;
    int threads = pe_threads();
    if (in_task || parts == 1 || threads == 1) {
        for (int64_t i = 0; i < parts; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&run_lock);
    int helpers = threads - 1;
    if (helpers > parts - 1) helpers = (int)(parts - 1);
    while (started < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[started] = atomic_load_explicit(&generation, memory_order_relaxed);
        int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)started);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        started++;
    }
    if (helpers > started) helpers = started;
    /* every started worker wakes for every job; only those with an index below `helpers` take parts */
    pthread_mutex_lock(&lock);
    job_fn = fn;
    job_ctx = ctx;
    job_parts = parts;
    job_helpers = helpers;
    atomic_store_explicit(&next_part, 0, memory_order_relaxed);
    atomic_store_explicit(&active, started, memory_order_relaxed);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    in_task = 1;
    work(fn, ctx, parts);
    in_task = 0;

    int spins = 0;
    while (atomic_load_explicit(&active, memory_order_acquire) > 0 && spins < 200000) {
        spins++;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    if (atomic_load_explicit(&active, memory_order_acquire) > 0) {
        pthread_mutex_lock(&lock);
        while (atomic_load_explicit(&active, memory_order_acquire) > 0) pthread_cond_wait(&done_cv, &lock);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&run_lock);
}
