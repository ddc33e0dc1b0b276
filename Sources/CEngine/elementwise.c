/* Elementwise and row passes, parallel over rows; each loop is compiled for AVX-512, AVX2 and
 * the baseline (target_clones) and vectorised by the compiler. */
#include "engine_internal.h"

#define CLONES PE_CLONES

float pe_expf(float x) { return pe_exp_approx(x); }

/* Reductions keep LANES independent partial results (one per vector lane), so the compiler
 * vectorises them without reassociating float additions; the order is fixed, so results are
 * deterministic. */
#define LANES 16

static inline float lane_sum(const float *p) {
    float s = 0;
    for (int l = 0; l < LANES; l++) s += p[l];
    return s;
}

CLONES void pe_exp_rows_sub(float *x, int64_t n, float m, float *sum) {
    float part[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float e = pe_exp_approx(x[i + l] - m);
            x[i + l] = e;
            part[l] += e;
        }
    float s = lane_sum(part);
    for (; i < n; i++) {
        float e = pe_exp_approx(x[i] - m);
        x[i] = e;
        s += e;
    }
    *sum = s;
}

CLONES static float row_max(const float *x, int64_t n) {
    float part[LANES];
    for (int l = 0; l < LANES; l++) part[l] = -INFINITY;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) part[l] = x[i + l] > part[l] ? x[i + l] : part[l];
    float m = -INFINITY;
    for (int l = 0; l < LANES; l++) m = part[l] > m ? part[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* Σ x and Σ (x − c)² with lane partial sums. */
CLONES static float row_sum(const float *x, int64_t n) {
    float part[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) part[l] += x[i + l];
    float s = lane_sum(part);
    for (; i < n; i++) s += x[i];
    return s;
}

CLONES static float row_sq_dev(const float *x, int64_t n, float c) {
    float part[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) { float d = x[i + l] - c; part[l] += d * d; }
    float s = lane_sum(part);
    for (; i < n; i++) { float d = x[i] - c; s += d * d; }
    return s;
}

float pe_row_max(const float *x, int64_t n) { return row_max(x, n); }

CLONES static void scale_row(float *x, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void pe_scale_row(float *x, int64_t n, float s) { scale_row(x, n, s); }

/* ---- parallel row passes ---- */

typedef struct {
    const float *x; float *y; int64_t rows, dim; float eps;
    const float *a, *b; int64_t rpb, stride;
} rows_job;

static int64_t rows_per_part(int64_t dim) {
    int64_t r = 16384 / (dim > 0 ? dim : 1);
    return r < 1 ? 1 : r;
}

CLONES static void ln_mod_row(const float *x, float *y, int64_t dim, float eps, const float *shift, const float *scale) {
    float mean = row_sum(x, dim) / (float)dim;
    float var = row_sq_dev(x, dim, mean) / (float)dim;
    float inv = 1.0f / sqrtf(var + eps);
    if (shift && scale) {
        for (int64_t i = 0; i < dim; i++) y[i] = (x[i] - mean) * inv * (1.0f + scale[i]) + shift[i];
    } else {
        for (int64_t i = 0; i < dim; i++) y[i] = (x[i] - mean) * inv;
    }
}

static void ln_mod_task(void *ctx, int64_t part) {
    rows_job *j = ctx;
    int64_t per = rows_per_part(j->dim);
    for (int64_t r = part * per; r < j->rows && r < (part + 1) * per; r++) {
        int64_t b = j->rpb > 0 ? r / j->rpb : 0;
        ln_mod_row(j->x + r * j->dim, j->y + r * j->dim, j->dim, j->eps,
                   j->a ? j->a + b * j->stride : NULL, j->b ? j->b + b * j->stride : NULL);
    }
}

void pe_layernorm_modulate(const float *x, float *y, int64_t rows, int64_t dim, float eps,
                           const float *shift, const float *scale, int64_t rows_per_batch, int64_t mod_stride) {
    rows_job j = {x, y, rows, dim, eps, shift, scale, rows_per_batch, mod_stride};
    pe_pool_run(ln_mod_task, &j, (rows + rows_per_part(dim) - 1) / rows_per_part(dim));
}

CLONES static void rms_row(const float *x, float *y, int64_t dim, float eps, const float *w) {
    float ss = row_sq_dev(x, dim, 0.0f);
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int64_t i = 0; i < dim; i++) y[i] = w[i] * (x[i] * inv);
}

static void rms_task(void *ctx, int64_t part) {
    rows_job *j = ctx;
    int64_t per = rows_per_part(j->dim);
    for (int64_t r = part * per; r < j->rows && r < (part + 1) * per; r++)
        rms_row(j->x + r * j->dim, j->y + r * j->dim, j->dim, j->eps, j->a);
}

void pe_rmsnorm(const float *x, float *y, int64_t rows, int64_t dim, float eps, const float *w) {
    rows_job j = {x, y, rows, dim, eps, w, NULL, 0, 0};
    pe_pool_run(rms_task, &j, (rows + rows_per_part(dim) - 1) / rows_per_part(dim));
}

CLONES static void gated_add_row(float *x, const float *y, int64_t dim, const float *g) {
    if (g) for (int64_t i = 0; i < dim; i++) x[i] = g[i] * y[i] + x[i];
    else for (int64_t i = 0; i < dim; i++) x[i] = y[i] + x[i];
}

static void gated_add_task(void *ctx, int64_t part) {
    rows_job *j = ctx;
    int64_t per = rows_per_part(j->dim);
    for (int64_t r = part * per; r < j->rows && r < (part + 1) * per; r++) {
        int64_t b = j->rpb > 0 ? r / j->rpb : 0;
        gated_add_row((float *)j->x + r * j->dim, j->y + r * j->dim, j->dim, j->a ? j->a + b * j->stride : NULL);
    }
}

void pe_gated_add(float *x, const float *y, int64_t rows, int64_t dim, const float *gate,
                  int64_t rows_per_batch, int64_t gate_stride) {
    rows_job j = {x, (float *)y, rows, dim, 0, gate, NULL, rows_per_batch, gate_stride};
    pe_pool_run(gated_add_task, &j, (rows + rows_per_part(dim) - 1) / rows_per_part(dim));
}

/* ---- elementwise over n ---- */

typedef struct { float *x; const float *y; int64_t n; int op; } ew_job;
#define EW_CHUNK 16384

CLONES static void gelu_span(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        float t = 1.0f - 2.0f / (pe_exp_approx(2.0f * u) + 1.0f); /* tanh(u) */
        x[i] = 0.5f * v * (1.0f + t);
    }
}

CLONES static void gelu_mul_span(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        float t = 1.0f - 2.0f / (pe_exp_approx(2.0f * u) + 1.0f);
        x[i] = 0.5f * v * (1.0f + t) * y[i];
    }
}

CLONES static void silu_span(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + pe_exp_approx(-x[i]));
}

static void ew_task(void *ctx, int64_t part) {
    ew_job *j = ctx;
    int64_t s = part * EW_CHUNK, n = j->n - s < EW_CHUNK ? j->n - s : EW_CHUNK;
    switch (j->op) {
    case 0: gelu_span(j->x + s, n); break;
    case 1: silu_span(j->x + s, n); break;
    case 2: gelu_mul_span(j->x + s, j->y + s, n); break;
    }
}

static void ew(float *x, const float *y, int64_t n, int op) {
    ew_job j = {x, y, n, op};
    pe_pool_run(ew_task, &j, (n + EW_CHUNK - 1) / EW_CHUNK);
}

void pe_gelu_tanh(float *x, int64_t n) { ew(x, NULL, n, 0); }
void pe_silu(float *x, int64_t n) { ew(x, NULL, n, 1); }
void pe_gelu_tanh_mul(float *x, const float *y, int64_t n) { ew(x, y, n, 2); }

typedef struct { float *x; int64_t rows, dim; } sm_job;

static void softmax_task(void *ctx, int64_t part) {
    sm_job *j = ctx;
    int64_t per = rows_per_part(j->dim);
    for (int64_t r = part * per; r < j->rows && r < (part + 1) * per; r++) {
        float *row = j->x + r * j->dim;
        float m = row_max(row, j->dim), s;
        pe_exp_rows_sub(row, j->dim, m, &s);
        scale_row(row, j->dim, 1.0f / s);
    }
}

void pe_softmax_rows(float *x, int64_t rows, int64_t dim) {
    sm_job j = {x, rows, dim};
    pe_pool_run(softmax_task, &j, (rows + rows_per_part(dim) - 1) / rows_per_part(dim));
}

/* ---- mean and biased variance (GroupNorm's statistics) ---- */
/* Two passes in double over 16 interleaved partial sums: each partial sum is a plain sequential
 * sum, so the compiler vectorises the loop without reassociating anything. */
PE_CLONES void pe_mean_var(const float *x, int64_t n, double *mean, double *var) {
    enum { L = 16 };
    double acc[L] = {0}, s = 0;
    int64_t i = 0;
    for (; i + L <= n; i += L)
        for (int j = 0; j < L; j++) acc[j] += x[i + j];
    for (int j = 0; j < L; j++) s += acc[j];
    for (; i < n; i++) s += x[i];
    double m = n > 0 ? s / (double)n : 0;
    double q[L] = {0}, t = 0;
    for (i = 0; i + L <= n; i += L)
        for (int j = 0; j < L; j++) {
            double d = (double)x[i + j] - m;
            q[j] += d * d;
        }
    for (int j = 0; j < L; j++) t += q[j];
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        t += d * d;
    }
    *mean = m;
    *var = n > 0 ? t / (double)n : 0;
}
