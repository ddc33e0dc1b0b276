/* 3×3 convolution (stride 1, padding 1) through oneDNN's f32 convolution, band by band on the
 * engine's pool.
 *
 * Measured before this was written (scripts/bench_conv_onednn.sh, formats/benchmarks.md): on the
 * VAE decoder's layer shapes oneDNN's f32 direct convolution runs 2–3× faster than the engine's
 * own 6×32 tiles (f32 or bf16) on an Intel Xeon with two 512-bit FMA ports, where vdpbf16ps
 * brings no more products per cycle than FMA. So the 3×3 convolutions depend on it.
 *
 * Each task of the pool takes a band of output rows: it fills the zero-padded band of input rows
 * with the engine's own f32 fill (the GroupNorm affine, SiLU and ×2 upsampling applied on the
 * way, pe_conv3x3_fill), describes it to oneDNN as a strided plain tensor, reorders it into the
 * convolution's blocked layout, runs the convolution (padding 0: the band holds the padding)
 * and reorders the blocked result into its rows of the plain output, adding to it when asked
 * (the reorder's sum post-op). oneDNN runs single-threaded inside each task (its OpenMP team is
 * set to one thread there), so the engine's pool is the only one, as with OpenBLAS. */
#include "engine_internal.h"
#include <dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pe_dnnl_conv {
    int64_t cin, cout;
    dnnl_memory_desc_t wmd; /* the blocked weight layout `weights` holds */
    void *weights;
};

static dnnl_engine_t engine;
static int engine_state; /* 0: not tried, 1: ready, −1: unavailable */
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;

int pe_dnnl_available(void) {
    pthread_mutex_lock(&engine_lock);
    if (engine_state == 0) engine_state = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? 1 : -1;
    int ok = engine_state == 1;
    pthread_mutex_unlock(&engine_lock);
    return ok;
}

/* Attributes asking for a scratchpad the caller passes: oneDNN's own ("library") scratchpad is
 * shared between primitives unless the library was built for concurrent execution, and the
 * pool runs bands concurrently. */
static dnnl_primitive_attr_t user_scratchpad(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

/* Executes prim with args (n of them) and, when pd asks for one, a scratchpad of its own. */
static int execute(dnnl_stream_t st, dnnl_primitive_desc_t pd, dnnl_primitive_t prim, dnnl_exec_arg_t *args, int n) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    void *pad = NULL;
    dnnl_memory_t m = NULL;
    dnnl_exec_arg_t all[8];
    if (n > 7) return 0;
    memcpy(all, args, sizeof(dnnl_exec_arg_t) * (size_t)n);
    if (bytes) {
        pad = pe_scratch_acquire(bytes);
        if (!pad || dnnl_memory_create(&m, smd, engine, pad) != dnnl_success) {
            pe_scratch_release(pad);
            return 0;
        }
        all[n].arg = DNNL_ARG_SCRATCHPAD;
        all[n].memory = m;
        n++;
    }
    int ok = dnnl_primitive_execute(prim, st, n, all) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
    if (m) dnnl_memory_destroy(m);
    pe_scratch_release(pad);
    return ok;
}

/* The convolution of a band: src [1, cin, rows + 2, w + 2] (already padded), dst [1, cout, rows, w]. */
static dnnl_primitive_desc_t band_pd(int64_t cin, int64_t cout, int64_t rows, int64_t w) {
    dnnl_dims_t sd = {1, cin, rows + 2, w + 2}, wd = {cout, cin, 3, 3}, bd = {cout}, dd = {1, cout, rows, w};
    dnnl_dims_t strides = {1, 1}, pad = {0, 0};
    dnnl_memory_desc_t src, wt, b, dst;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = user_scratchpad();
    if (!attr) return NULL;
    if (dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wt, 4, wd, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wt, &b, &dst,
                                           strides, pad, pad) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL) != dnnl_success)
        pd = NULL;
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* Runs one reorder from `from` (at p) to `to` (at q), adding to q when sum. */
static int reorder(dnnl_stream_t st, const dnnl_memory_desc_t *from, void *p, const dnnl_memory_desc_t *to, void *q,
                   int sum) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t a = NULL, b = NULL;
    int ok = 0;
    attr = user_scratchpad();
    if (!attr) goto done;
    if (sum) {
        if (dnnl_post_ops_create(&ops) != dnnl_success || dnnl_post_ops_append_sum(ops, 1.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, ops) != dnnl_success)
            goto done;
    }
    if (dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr) != dnnl_success ||
        dnnl_primitive_create(&prim, pd) != dnnl_success || dnnl_memory_create(&a, from, engine, p) != dnnl_success ||
        dnnl_memory_create(&b, to, engine, q) != dnnl_success)
        goto done;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
    ok = execute(st, pd, prim, args, 2);
done:
    if (a) dnnl_memory_destroy(a);
    if (b) dnnl_memory_destroy(b);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return ok;
}

pe_dnnl_conv *pe_dnnl_conv3x3_create(const float *w_oihw, int64_t cin, int64_t cout) {
    if (!w_oihw || cin <= 0 || cout <= 0 || !pe_dnnl_available()) return NULL;
    pe_omp_single();
    dnnl_primitive_desc_t pd = band_pd(cin, cout, 8, 64);
    if (!pd) return NULL;
    pe_dnnl_conv *c = calloc(1, sizeof *c);
    dnnl_stream_t st = NULL;
    if (!c) goto fail;
    c->cin = cin;
    c->cout = cout;
    c->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (posix_memalign(&c->weights, 64, dnnl_memory_desc_get_size(&c->wmd)) != 0) c->weights = NULL;
    dnnl_dims_t wd = {cout, cin, 3, 3};
    dnnl_memory_desc_t plain;
    if (!c->weights || dnnl_memory_desc_init_by_tag(&plain, 4, wd, dnnl_f32, dnnl_oihw) != dnnl_success ||
        dnnl_stream_create(&st, engine, dnnl_stream_default_flags) != dnnl_success ||
        !reorder(st, &plain, (void *)w_oihw, &c->wmd, c->weights, 0))
        goto fail;
    dnnl_stream_destroy(st);
    dnnl_primitive_desc_destroy(pd);
    return c;
fail:
    if (st) dnnl_stream_destroy(st);
    dnnl_primitive_desc_destroy(pd);
    pe_dnnl_conv3x3_destroy(c);
    return NULL;
}

void pe_dnnl_conv3x3_destroy(pe_dnnl_conv *c) {
    if (!c) return;
    free(c->weights);
    free(c);
}

typedef struct {
    const pe_dnnl_conv *c;
    pe_conv_input in;
    const float *bias; /* never NULL: zeros when the layer has none */
    float *y;
    int accumulate;
    int64_t ih, iw, band_rows, bands;
    dnnl_primitive_desc_t pd[2]; /* full bands, the last (shorter) band when there is one */
    dnnl_primitive_t prim[2];
    const void *weights[2];      /* in each primitive's weight layout */
    int failed; /* set by a task that failed (read after the pool returns) */
} band_job;

static void band_task(void *ctx, int64_t b) {
    band_job *j = ctx;
    const pe_dnnl_conv *c = j->c;
    int64_t r0 = b * j->band_rows, rows = j->ih - r0 < j->band_rows ? j->ih - r0 : j->band_rows, w = j->iw;
    int last = rows != j->band_rows;
    dnnl_primitive_desc_t pd = j->pd[last];
    pe_omp_single();
    int64_t bps = pe_conv3x3_band_stride(rows, w);
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    size_t plain_bytes = (size_t)c->cin * bps * 4, src_bytes = dnnl_memory_desc_get_size(src_md),
           dst_bytes = dnnl_memory_desc_get_size(dst_md);
    char *buf = pe_scratch_acquire(plain_bytes + src_bytes + dst_bytes + 128);
    dnnl_stream_t st = NULL;
    dnnl_memory_t ms = NULL, mw = NULL, mb = NULL, md = NULL;
    int ok = 0;
    if (!buf) goto done;
    float *plain = (float *)buf;
    void *src = buf + ((plain_bytes + 63) & ~(size_t)63);
    void *dst = (char *)src + ((src_bytes + 63) & ~(size_t)63);
    if (pe_conv3x3_fill(j->in, r0, rows, plain, bps, 1) != 0) goto done;
    dnnl_dims_t sd = {1, c->cin, rows + 2, w + 2}, ss = {c->cin * bps, bps, w + 2, 1};
    dnnl_dims_t yd = {1, c->cout, rows, w}, ys = {c->cout * j->ih * w, j->ih * w, w, 1};
    dnnl_memory_desc_t plain_md, y_md, b_md;
    dnnl_dims_t bd = {c->cout};
    if (dnnl_memory_desc_init_by_strides(&plain_md, 4, sd, dnnl_f32, ss) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&y_md, 4, yd, dnnl_f32, ys) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x) != dnnl_success ||
        dnnl_stream_create(&st, engine, dnnl_stream_default_flags) != dnnl_success ||
        !reorder(st, &plain_md, plain, src_md, src, 0) ||
        dnnl_memory_create(&ms, src_md, engine, src) != dnnl_success ||
        dnnl_memory_create(&mw, w_md, engine, (void *)j->weights[last]) != dnnl_success ||
        dnnl_memory_create(&mb, &b_md, engine, (void *)j->bias) != dnnl_success ||
        dnnl_memory_create(&md, dst_md, engine, dst) != dnnl_success)
        goto done;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md}};
    ok = execute(st, pd, j->prim[last], args, 4) && reorder(st, dst_md, dst, &y_md, j->y + r0 * w, j->accumulate);
done:
    if (ms) dnnl_memory_destroy(ms);
    if (mw) dnnl_memory_destroy(mw);
    if (mb) dnnl_memory_destroy(mb);
    if (md) dnnl_memory_destroy(md);
    if (st) dnnl_stream_destroy(st);
    pe_scratch_release(buf);
    if (!ok) __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
}

/* The weights in the layout of `pd`: the kept copy when the layouts agree, else a reordered copy
 * in *owned (freed by the caller). NULL on failure. */
static const void *weights_for(const pe_dnnl_conv *c, dnnl_primitive_desc_t pd, void **owned) {
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (dnnl_memory_desc_equal(w_md, &c->wmd)) return c->weights;
    dnnl_stream_t st = NULL;
    if (posix_memalign(owned, 64, dnnl_memory_desc_get_size(w_md)) != 0) *owned = NULL;
    int ok = *owned && dnnl_stream_create(&st, engine, dnnl_stream_default_flags) == dnnl_success &&
             reorder(st, &c->wmd, c->weights, w_md, *owned, 0);
    if (st) dnnl_stream_destroy(st);
    return ok ? *owned : NULL;
}

int pe_dnnl_conv3x3_image(const pe_dnnl_conv *c, pe_conv_input in, const float *bias, float *y, int accumulate,
                          int64_t band_rows) {
    if (!c || !in.x || !y || in.cin != c->cin || in.h <= 0 || in.w <= 0 || engine_state != 1) return -1;
    int64_t ih = in.upsample2x ? 2 * in.h : in.h, iw = in.upsample2x ? 2 * in.w : in.w;
    if (band_rows <= 0) {
        /* bands of about 4 MiB of input per task (the blocked copy and the output band double
         * it), at least two bands per thread so that both cores stay busy */
        band_rows = ((int64_t)4 << 20) / (c->cin * (iw + 2) * 4) - 2;
        int64_t per = (ih + 2 * pe_threads() - 1) / (2 * pe_threads());
        if (band_rows > per) band_rows = per;
        if (band_rows < 1) band_rows = 1;
    }
    if (band_rows > ih) band_rows = ih;
    /* oneDNN's bias argument is optional only in the descriptor: a layer without one adds zeros */
    float *zeros = bias ? NULL : calloc((size_t)c->cout, 4);
    if (!bias && !zeros) return -1;
    band_job j = {c, in, bias ? bias : zeros, y, accumulate, ih, iw, band_rows, (ih + band_rows - 1) / band_rows,
                  {0}, {0}, {0}, 0};
    pe_omp_single();
    int64_t last_rows = ih - (j.bands - 1) * band_rows;
    int kinds = last_rows == band_rows ? 1 : 2; /* a last band index of 1 occurs only when it is shorter */
    void *owned[2] = {NULL, NULL};
    int ok = 1;
    for (int k = 0; k < kinds && ok; k++) {
        j.pd[k] = band_pd(c->cin, c->cout, k == 0 ? band_rows : last_rows, iw);
        ok = j.pd[k] && dnnl_primitive_create(&j.prim[k], j.pd[k]) == dnnl_success &&
             (j.weights[k] = weights_for(c, j.pd[k], &owned[k])) != NULL;
    }
    if (ok) {
        pe_pool_run(band_task, &j, j.bands);
        ok = !j.failed;
    }
    for (int k = 0; k < 2; k++) {
        if (j.prim[k]) dnnl_primitive_destroy(j.prim[k]);
        if (j.pd[k]) dnnl_primitive_desc_destroy(j.pd[k]);
        free(owned[k]);
    }
    free(zeros);
    return ok ? PE_ISA_DNNL_F32 : -1;
}
