/* Fused attention: per (batch, head, block of queries), scores against one block of keys at a
 * time (sgemm), online softmax (running max and sum, the partial output rescaled when the max
 * grows), then the block's values accumulated (sgemm). Tasks run on the pool; OpenBLAS runs
 * single-threaded inside them. */
#include "engine_internal.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define QB 128 /* queries per task */
#define KB 512 /* keys per block */
#define FQB 256 /* queries per task of the AVX-512 path */
#define FKB 512 /* keys per block of the AVX-512 path (a multiple of 64) */

typedef struct {
    const float *q, *k, *v;
    float *o;
    pe_attention_args a;
    int64_t qblocks;
} att_job;

/* One score row of a key block: adds the key bias and the head bias (either may be NULL), then
 * the online-softmax step. The row becomes exp(row − max) (zeros while nothing is attendable),
 * the running max and sum are updated, and the factor by which the row's partial output must
 * be rescaled is returned (1 when the max did not grow). */
static float softmax_step(float *row, int64_t cols, const float *key_bias, const float *bias, float *mx, float *sum) {
    if (key_bias) for (int64_t c = 0; c < cols; c++) row[c] += key_bias[c];
    if (bias) for (int64_t c = 0; c < cols; c++) row[c] += bias[c];
    float m = pe_row_max(row, cols);
    float mnew = m > *mx ? m : *mx;
    if (mnew == -INFINITY) {
        memset(row, 0, (size_t)cols * 4);
        return 1.0f;
    }
    float part_sum;
    pe_exp_rows_sub(row, cols, mnew, &part_sum);
    float corr = *mx == -INFINITY ? 0.0f : (mnew != *mx ? pe_expf(*mx - mnew) : 1.0f);
    *sum = *sum * corr + part_sum;
    *mx = mnew;
    return corr;
}

/* The key bias of key block j0 in batch b, and the head bias of query row qi of head h (NULL where
 * there is none). */
static const float *key_bias_at(const pe_attention_args *a, int64_t b, int64_t j0) {
    return a->key_bias ? a->key_bias + b * a->nk + j0 : NULL;
}
static const float *head_bias_at(const pe_attention_args *a, int64_t h, int64_t qi, int64_t j0) {
    return a->bias ? a->bias + (h * a->nq + qi) * a->nk + j0 : NULL;
}

/* o[r] = acc[r] / sum[r] for the task's rows (0 where nothing was attended). */
static void write_rows(const float *acc, int64_t ldacc, const float *sum, int64_t rows, int64_t d, float *o, int64_t ldo) {
    for (int64_t r = 0; r < rows; r++) {
        float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        for (int64_t c = 0; c < d; c++) o[r * ldo + c] = acc[r * ldacc + c] * inv;
    }
}

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
        pe_sgemm(0, 1, rows, cols, a.d, a.scale, qp, a.ldq, kp, a.ldk, 0.0f, s, cols);
        for (int64_t r = 0; r < rows; r++) {
            float corr = softmax_step(s + r * cols, cols, key_bias_at(&a, b, j0), head_bias_at(&a, h, i0 + r, j0),
                                      mx + r, sum + r);
            if (corr != 1.0f) pe_scale_row(acc + r * a.d, a.d, corr);
        }
        pe_sgemm(0, 0, rows, a.d, cols, 1.0f, s, cols, vp, a.ldv, 1.0f, acc, a.d);
    }
    write_rows(acc, a.d, sum, rows, a.d, j->o + b * a.o_bstride + i0 * a.ldo + h * a.d, a.ldo);
    pe_scratch_release(s);
}

#if defined(__x86_64__)
/* The AVX-512 path for head dims up to 128 (T5: 64, PixArt: 72): per key block, kᵀ is packed
 * as [d][64 keys] panels and v as [keys][dp] rows (dp = d rounded up to 16, zero padded); then
 * for every 4 query rows, scores 4 × 64 at a time (16 zmm accumulators over d), the online
 * softmax on the 4 score rows, and o += p·v with 4 × dp/16 accumulators. */
#define AVX512_ATT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

AVX512_ATT static void scores_4x64(const float *q0, int64_t ldq, const float *kt, int64_t d, float scale,
                                   float *s, int64_t lds) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        const float *kp = kt + c * 64;
        __m512 k0 = _mm512_loadu_ps(kp), k1 = _mm512_loadu_ps(kp + 16), k2 = _mm512_loadu_ps(kp + 32), k3 = _mm512_loadu_ps(kp + 48);
        for (int r = 0; r < 4; r++) {
            __m512 qv = _mm512_set1_ps(q0[r * ldq + c]);
            acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(s + r * lds + c * 16, _mm512_mul_ps(acc[r][c], sc));
}

/* acc[r][0..dp) = oacc[r]·corr[r] + Σ_j p[r][j] · v[j][0..dp), for 4 rows; dp/16 ≤ 8 vectors. */
AVX512_ATT static inline __attribute__((always_inline)) void pv_4n(const float *p, int64_t ldp, const float *vp,
        int64_t cols, int64_t dp, float *oacc, const float *corr, const int nv) {
    __m512 acc[4][8];
    for (int r = 0; r < 4; r++) {
        __m512 cr = _mm512_set1_ps(corr[r]);
        for (int c = 0; c < nv; c++) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(oacc + r * dp + c * 16), cr);
    }
    for (int64_t j = 0; j < cols; j++) {
        const float *vr = vp + j * dp;
        __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[ldp + j]);
        __m512 p2 = _mm512_set1_ps(p[2 * ldp + j]), p3 = _mm512_set1_ps(p[3 * ldp + j]);
        for (int c = 0; c < nv; c++) {
            __m512 vv = _mm512_loadu_ps(vr + c * 16);
            acc[0][c] = _mm512_fmadd_ps(p0, vv, acc[0][c]);
            acc[1][c] = _mm512_fmadd_ps(p1, vv, acc[1][c]);
            acc[2][c] = _mm512_fmadd_ps(p2, vv, acc[2][c]);
            acc[3][c] = _mm512_fmadd_ps(p3, vv, acc[3][c]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < nv; c++) _mm512_storeu_ps(oacc + r * dp + c * 16, acc[r][c]);
}

/* One specialisation per vector count, so the accumulators stay in registers. */
AVX512_ATT static void pv_4(const float *p, int64_t ldp, const float *vp, int64_t cols, int64_t dp, float *oacc,
                            const float *corr) {
    switch (dp / 16) {
    case 1: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 1); break;
    case 2: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 2); break;
    case 3: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 3); break;
    case 4: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 4); break;
    case 5: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 5); break;
    case 6: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 6); break;
    case 7: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 7); break;
    default: pv_4n(p, ldp, vp, cols, dp, oacc, corr, 8); break;
    }
}

static void att_task_avx512(void *ctx, int64_t part) {
    att_job *j = ctx;
    pe_attention_args a = j->a;
    int64_t qb = part % j->qblocks, bh = part / j->qblocks;
    int64_t h = bh % a.heads, b = bh / a.heads;
    int64_t i0 = qb * FQB, rows = a.nq - i0 < FQB ? a.nq - i0 : FQB;
    int64_t d = a.d, dp = (d + 15) / 16 * 16;
    int64_t groups = (rows + 3) / 4;
    size_t floats = (size_t)(d * FKB + FKB * dp + 4 * FKB + groups * 4 * dp + 2 * groups * 4 + 4 * d);
    float *buf = pe_scratch_acquire(floats * 4);
    if (!buf) { fprintf(stderr, "pixconv: out of memory for attention scratch\n"); abort(); }
    float *kt = buf, *vp = kt + d * FKB, *s = vp + FKB * dp, *oacc = s + 4 * FKB;
    float *mx = oacc + groups * 4 * dp, *sum = mx + groups * 4, *qpad = sum + groups * 4;
    for (int64_t r = 0; r < groups * 4; r++) { mx[r] = -INFINITY; sum[r] = 0; }
    memset(oacc, 0, (size_t)(groups * 4 * dp) * 4);
    const float *qbase = j->q + b * a.q_bstride + i0 * a.ldq + h * d;
    for (int64_t j0 = 0; j0 < a.nk; j0 += FKB) {
        int64_t cols = a.nk - j0 < FKB ? a.nk - j0 : FKB;
        int64_t panels = (cols + 63) / 64;
        /* pack kᵀ panels (zeros past the last key) and v rows (zeros past d) */
        for (int64_t pnl = 0; pnl < panels; pnl++) {
            float *dst = kt + pnl * d * 64;
            for (int64_t t = 0; t < 64; t++) {
                int64_t key = pnl * 64 + t;
                if (key < cols) {
                    const float *kr = j->k + b * a.k_bstride + (j0 + key) * a.ldk + h * d;
                    for (int64_t c = 0; c < d; c++) dst[c * 64 + t] = kr[c];
                } else {
                    for (int64_t c = 0; c < d; c++) dst[c * 64 + t] = 0;
                }
            }
        }
        for (int64_t t = 0; t < cols; t++) {
            const float *vr = j->v + b * a.v_bstride + (j0 + t) * a.ldv + h * d;
            memcpy(vp + t * dp, vr, (size_t)d * 4);
            for (int64_t c = d; c < dp; c++) vp[t * dp + c] = 0;
        }
        for (int64_t g = 0; g < groups; g++) {
            int64_t r0 = g * 4, live = rows - r0 < 4 ? rows - r0 : 4;
            const float *q0 = qbase + r0 * a.ldq;
            int64_t ldq = a.ldq;
            if (live < 4) { /* pad the last group with copies of its first row */
                for (int r = 0; r < 4; r++) memcpy(qpad + r * d, qbase + (r0 + (r < live ? r : 0)) * a.ldq, (size_t)d * 4);
                q0 = qpad;
                ldq = d;
            }
            for (int64_t pnl = 0; pnl < panels; pnl++)
                scores_4x64(q0, ldq, kt + pnl * d * 64, d, a.scale, s + pnl * 64, FKB);
            float corr[4];
            for (int r = 0; r < 4; r++) {
                int64_t qi = i0 + r0 + (r < live ? r : 0);
                corr[r] = softmax_step(s + r * FKB, cols, key_bias_at(&a, b, j0), head_bias_at(&a, h, qi, j0),
                                       mx + r0 + r, sum + r0 + r);
            }
            pv_4(s, FKB, vp, cols, dp, oacc + r0 * dp, corr);
        }
    }
    write_rows(oacc, dp, sum, rows, d, j->o + b * a.o_bstride + i0 * a.ldo + h * d, a.ldo);
    pe_scratch_release(buf);
}
#endif

#if defined(__x86_64__)
/* The bf16 path (AVX512_BF16, head dims ≤ 128): q, k, p and v rounded to bf16, products summed
 * in f32 by vdpbf16ps; kᵀ panels hold pairs along the head dim, v pairs along the keys. */
#define BF16_ATT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

/* n floats → n bf16 (round to nearest even), zeros up to `padded`. */
BF16_ATT static void cvt_bf16(const float *x, int64_t n, uint16_t *out, int64_t padded) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        memcpy(out + i, &h, 32);
    }
    for (; i < n; i++) out[i] = pe_float_to_bf16(x[i]);
    for (; i < padded; i++) out[i] = 0;
}

BF16_ATT static void scores_bf16_4x64(const uint32_t *q2, int64_t dpairs, const uint32_t *kt, float scale, float *s,
                                      int64_t lds) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t c = 0; c < dpairs; c++) {
        const uint32_t *kp = kt + c * 64;
        __m512i k0 = _mm512_loadu_si512(kp), k1 = _mm512_loadu_si512(kp + 16);
        __m512i k2 = _mm512_loadu_si512(kp + 32), k3 = _mm512_loadu_si512(kp + 48);
        for (int r = 0; r < 4; r++) {
            __m512i qv = _mm512_set1_epi32((int)q2[r * dpairs + c]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)k0, (__m512bh)qv);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)k1, (__m512bh)qv);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], (__m512bh)k2, (__m512bh)qv);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], (__m512bh)k3, (__m512bh)qv);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(s + r * lds + c * 16, _mm512_mul_ps(acc[r][c], sc));
}

BF16_ATT static inline __attribute__((always_inline)) void pv_bf16_4n(const uint32_t *p2, int64_t ldp2,
        const uint32_t *vt, int64_t pairs, int64_t dp, float *oacc, const float *corr, const int nv) {
    __m512 acc[4][8];
    for (int r = 0; r < 4; r++) {
        __m512 cr = _mm512_set1_ps(corr[r]);
        for (int c = 0; c < nv; c++) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(oacc + r * dp + c * 16), cr);
    }
    for (int64_t j = 0; j < pairs; j++) {
        const uint32_t *vr = vt + j * dp;
        __m512i p0 = _mm512_set1_epi32((int)p2[j]), p1 = _mm512_set1_epi32((int)p2[ldp2 + j]);
        __m512i pq = _mm512_set1_epi32((int)p2[2 * ldp2 + j]), p3 = _mm512_set1_epi32((int)p2[3 * ldp2 + j]);
        for (int c = 0; c < nv; c++) {
            __m512i vv = _mm512_loadu_si512(vr + c * 16);
            acc[0][c] = _mm512_dpbf16_ps(acc[0][c], (__m512bh)vv, (__m512bh)p0);
            acc[1][c] = _mm512_dpbf16_ps(acc[1][c], (__m512bh)vv, (__m512bh)p1);
            acc[2][c] = _mm512_dpbf16_ps(acc[2][c], (__m512bh)vv, (__m512bh)pq);
            acc[3][c] = _mm512_dpbf16_ps(acc[3][c], (__m512bh)vv, (__m512bh)p3);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < nv; c++) _mm512_storeu_ps(oacc + r * dp + c * 16, acc[r][c]);
}

BF16_ATT static void pv_bf16_4(const uint32_t *p2, int64_t ldp2, const uint32_t *vt, int64_t pairs, int64_t dp,
                               float *oacc, const float *corr) {
    switch (dp / 16) {
    case 1: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 1); break;
    case 2: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 2); break;
    case 3: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 3); break;
    case 4: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 4); break;
    case 5: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 5); break;
    case 6: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 6); break;
    case 7: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 7); break;
    default: pv_bf16_4n(p2, ldp2, vt, pairs, dp, oacc, corr, 8); break;
    }
}

static void att_task_bf16(void *ctx, int64_t part) {
    att_job *j = ctx;
    pe_attention_args a = j->a;
    int64_t qb = part % j->qblocks, bh = part / j->qblocks;
    int64_t h = bh % a.heads, b = bh / a.heads;
    int64_t i0 = qb * FQB, rows = a.nq - i0 < FQB ? a.nq - i0 : FQB;
    int64_t d = a.d, dp = (d + 15) / 16 * 16, dpairs = (d + 1) / 2;
    int64_t groups = (rows + 3) / 4;
    size_t words = (size_t)(dpairs * FKB + FKB / 2 * dp + 4 * FKB + 4 * FKB / 2 + groups * 4 * dp + 2 * groups * 4
                            + 4 * dpairs + 2 * dp);
    uint32_t *buf = pe_scratch_acquire(words * 4);
    if (!buf) { fprintf(stderr, "pixconv: out of memory for attention scratch\n"); abort(); }
    uint32_t *kt = buf, *vt = kt + dpairs * FKB;
    float *s = (float *)(vt + FKB / 2 * dp);
    uint32_t *p2 = (uint32_t *)(s + 4 * FKB);
    float *oacc = (float *)(p2 + 4 * FKB / 2), *mx = oacc + groups * 4 * dp, *sum = mx + groups * 4;
    uint32_t *q2 = (uint32_t *)(sum + groups * 4);
    uint16_t *t16 = (uint16_t *)(q2 + 4 * dpairs); /* two rows of dp bf16 */
    for (int64_t r = 0; r < groups * 4; r++) { mx[r] = -INFINITY; sum[r] = 0; }
    memset(oacc, 0, (size_t)(groups * 4 * dp) * 4);
    const float *qbase = j->q + b * a.q_bstride + i0 * a.ldq + h * d;
    for (int64_t j0 = 0; j0 < a.nk; j0 += FKB) {
        int64_t cols = a.nk - j0 < FKB ? a.nk - j0 : FKB;
        int64_t panels = (cols + 63) / 64, pairs = (cols + 1) / 2;
        for (int64_t pnl = 0; pnl < panels; pnl++) {
            uint32_t *dst = kt + pnl * dpairs * 64;
            for (int64_t t = 0; t < 64; t++) {
                int64_t key = pnl * 64 + t;
                if (key < cols) cvt_bf16(j->k + b * a.k_bstride + (j0 + key) * a.ldk + h * d, d, t16, 2 * dpairs);
                else memset(t16, 0, (size_t)dpairs * 4);
                const uint32_t *w = (const uint32_t *)t16;
                for (int64_t c = 0; c < dpairs; c++) dst[c * 64 + t] = w[c];
            }
        }
        for (int64_t t = 0; t < pairs; t++) {
            const float *v0 = j->v + b * a.v_bstride + (j0 + 2 * t) * a.ldv + h * d;
            cvt_bf16(v0, d, t16, dp);
            if (2 * t + 1 < cols) cvt_bf16(v0 + a.ldv, d, t16 + dp, dp);
            else memset(t16 + dp, 0, (size_t)dp * 2);
            for (int64_t c = 0; c < dp; c++) vt[t * dp + c] = (uint32_t)t16[c] | ((uint32_t)t16[dp + c] << 16);
        }
        for (int64_t g = 0; g < groups; g++) {
            int64_t r0 = g * 4, live = rows - r0 < 4 ? rows - r0 : 4;
            for (int r = 0; r < 4; r++)
                cvt_bf16(qbase + (r0 + (r < live ? r : 0)) * a.ldq, d, (uint16_t *)(q2 + r * dpairs), 2 * dpairs);
            for (int64_t pnl = 0; pnl < panels; pnl++)
                scores_bf16_4x64(q2, dpairs, kt + pnl * dpairs * 64, a.scale, s + pnl * 64, FKB);
            float corr[4];
            for (int r = 0; r < 4; r++) {
                int64_t qi = i0 + r0 + (r < live ? r : 0);
                float *row = s + r * FKB;
                corr[r] = softmax_step(row, cols, key_bias_at(&a, b, j0), head_bias_at(&a, h, qi, j0),
                                       mx + r0 + r, sum + r0 + r);
                cvt_bf16(row, cols, (uint16_t *)(p2 + r * (FKB / 2)), 2 * pairs);
            }
            pv_bf16_4(p2, FKB / 2, vt, pairs, dp, oacc + r0 * dp, corr);
        }
    }
    write_rows(oacc, dp, sum, rows, d, j->o + b * a.o_bstride + i0 * a.ldo + h * d, a.ldo);
    pe_scratch_release(buf);
}
#endif

void pe_attention(const float *q, const float *k, const float *v, float *o, pe_attention_args a) {
    if (a.batch <= 0 || a.heads <= 0 || a.nq <= 0 || a.d <= 0) return;
    if (a.nk <= 0) {
        for (int64_t b = 0; b < a.batch; b++)
            for (int64_t i = 0; i < a.nq; i++)
                memset(o + b * a.o_bstride + i * a.ldo, 0, (size_t)(a.heads * a.d) * 4);
        return;
    }
#if defined(__x86_64__)
    if (a.bf16 && a.d <= 128 && (pe_cpu_features() & PE_CPU_AVX512BF16)) {
        att_job j = {q, k, v, o, a, (a.nq + FQB - 1) / FQB};
        pe_pool_run(att_task_bf16, &j, a.batch * a.heads * j.qblocks);
        return;
    }
    if (a.d <= 128 && (pe_cpu_features() & PE_CPU_AVX512)) {
        att_job j = {q, k, v, o, a, (a.nq + FQB - 1) / FQB};
        pe_pool_run(att_task_avx512, &j, a.batch * a.heads * j.qblocks);
        return;
    }
#endif
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

int pe_attention_bf16(pe_attention_args a) {
    return a.bf16 && a.d <= 128 && (pe_cpu_features() & PE_CPU_AVX512BF16) ? 1 : 0;
}
