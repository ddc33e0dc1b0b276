/* Fused attention: per (batch, head, block of queries), scores against one block of keys at a
 * time (sgemm), online softmax (running max and sum, the partial output rescaled when the max
 * grows), then the block's values accumulated (sgemm). Tasks run on the pool; OpenBLAS runs
 * single-threaded inside them. */
#include "engine_internal.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#define QB 128 /* queries per task */
#define KB 512 /* keys per block */

typedef struct {
    const float *q, *k, *v;
    float *o;
    pe_attention_args a;
    int64_t qblocks;
} att_job;

static void att_task(void *ctx, int64_t part) {
    att_job *j = ctx;
    pe_attention_args a = j->a;
    int64_t qb = part % j->qblocks, bh = part / j->qblocks;
    int64_t h = bh % a.heads, b = bh / a.heads;
    int64_t i0 = qb * QB, rows = a.nq - i0 < QB ? a.nq - i0 : QB;
    int64_t kbn = a.nk < KB ? a.nk : KB;
    float *s = pe_scratch_acquire((size_t)(rows * kbn + rows * a.d + 2 * rows) * 4);
    if (!s) { fprintf(stderr, "pixconv: out of memory for attention scratch\n"); abort(); }
    float *acc = s + rows * kbn, *mx = acc + rows * a.d, *sum = mx + rows;
    for (int64_t r = 0; r < rows; r++) { mx[r] = -INFINITY; sum[r] = 0; }
    memset(acc, 0, (size_t)(rows * a.d) * 4);
    const float *qp = j->q + b * a.q_bstride + i0 * a.ldq + h * a.d;
    for (int64_t j0 = 0; j0 < a.nk; j0 += KB) {
        int64_t cols = a.nk - j0 < KB ? a.nk - j0 : KB;
        const float *kp = j->k + b * a.k_bstride + j0 * a.ldk + h * a.d;
        const float *vp = j->v + b * a.v_bstride + j0 * a.ldv + h * a.d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)a.d, a.scale,
                    qp, (int)a.ldq, kp, (int)a.ldk, 0.0f, s, (int)cols);
        for (int64_t r = 0; r < rows; r++) {
            float *row = s + r * cols;
            if (a.key_bias) {
                const float *kb = a.key_bias + b * a.nk + j0;
                for (int64_t c = 0; c < cols; c++) row[c] += kb[c];
            }
            if (a.bias) {
                const float *bb = a.bias + (h * a.nq + i0 + r) * a.nk + j0;
                for (int64_t c = 0; c < cols; c++) row[c] += bb[c];
            }
            float m = pe_row_max(row, cols);
            float mnew = m > mx[r] ? m : mx[r];
            if (mnew == -INFINITY) { memset(row, 0, (size_t)cols * 4); continue; } /* nothing to attend yet */
            float part_sum;
            pe_exp_rows_sub(row, cols, mnew, &part_sum);
            if (mnew != mx[r]) {
                float corr = mx[r] == -INFINITY ? 0.0f : pe_expf(mx[r] - mnew);
                sum[r] *= corr;
                pe_scale_row(acc + r * a.d, a.d, corr);
                mx[r] = mnew;
            }
            sum[r] += part_sum;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)a.d, (int)cols, 1.0f,
                    s, (int)cols, vp, (int)a.ldv, 1.0f, acc, (int)a.d);
    }
    float *op = j->o + b * a.o_bstride + i0 * a.ldo + h * a.d;
    for (int64_t r = 0; r < rows; r++) {
        float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        for (int64_t c = 0; c < a.d; c++) op[r * a.ldo + c] = acc[r * a.d + c] * inv;
    }
    pe_scratch_release(s);
}

void pe_attention(const float *q, const float *k, const float *v, float *o, pe_attention_args a) {
    if (a.batch <= 0 || a.heads <= 0 || a.nq <= 0 || a.d <= 0) return;
    if (a.nk <= 0) {
        for (int64_t b = 0; b < a.batch; b++)
            for (int64_t i = 0; i < a.nq; i++)
                memset(o + b * a.o_bstride + i * a.ldo, 0, (size_t)(a.heads * a.d) * 4);
        return;
    }
    att_job j = {q, k, v, o, a, (a.nq + QB - 1) / QB};
    pe_pool_run(att_task, &j, a.batch * a.heads * j.qblocks);
}

void pe_attention_ref(const float *q, const float *k, const float *v, float *o, pe_attention_args a) {
    double *s = malloc((size_t)(a.nk > 0 ? a.nk : 1) * sizeof(double));
    if (!s) { fprintf(stderr, "pixconv: out of memory\n"); abort(); }
    for (int64_t b = 0; b < a.batch; b++)
        for (int64_t h = 0; h < a.heads; h++)
            for (int64_t i = 0; i < a.nq; i++) {
                const float *qr = q + b * a.q_bstride + i * a.ldq + h * a.d;
                double m = -INFINITY;
                for (int64_t t = 0; t < a.nk; t++) {
                    const float *kr = k + b * a.k_bstride + t * a.ldk + h * a.d;
                    double acc = 0;
                    for (int64_t c = 0; c < a.d; c++) acc += (double)qr[c] * (double)kr[c];
                    s[t] = acc * a.scale + (a.key_bias ? a.key_bias[b * a.nk + t] : 0.0)
                         + (a.bias ? a.bias[(h * a.nq + i) * a.nk + t] : 0.0);
                    if (s[t] > m) m = s[t];
                }
                double sum = 0;
                for (int64_t t = 0; t < a.nk; t++) { s[t] = exp(s[t] - m); sum += s[t]; }
                float *or_ = o + b * a.o_bstride + i * a.ldo + h * a.d;
                for (int64_t c = 0; c < a.d; c++) {
                    double acc = 0;
                    for (int64_t t = 0; t < a.nk; t++) acc += s[t] * (double)v[b * a.v_bstride + t * a.ldv + h * a.d + c];
                    or_[c] = a.nk > 0 ? (float)(acc / sum) : 0.0f;
                }
            }
    free(s);
}
