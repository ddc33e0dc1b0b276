/* The linear operation on stored weight types: y = x·Wᵀ (+ bias) (+ y).
 *
 * Work is split into tasks of one weight panel (32 output columns; more for the sgemm path)
 * times a range of token rows. A task packs its panel into scratch (interleaved so that one
 * vector load feeds 16 columns and a 4-byte activation group is broadcast), then streams its
 * token rows through it. The store on disk keeps GGUF's layout; packing happens per panel. */
#include "engine_internal.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define NR 32                    /* output columns per int8 / bf16 panel */
#ifndef VNNI_PANELS
#define VNNI_PANELS 4            /* int8 panels per task on the VNNI path */
#endif
/* per 32-wide K block: 32 f32 scales, 32 int32 corrections, 8 groups × 32 cols × 4 bytes */
#define QPANEL_KB_BYTES (128 + 128 + 8 * 128)

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "pixconv: out of memory for engine scratch\n");
        abort();
    }
    return p;
}

/* ---- stored rows ---- */

void pe_row_to_int8(pe_wtype t, const void *row, int64_t K, int8_t *q, float *d) {
    const uint8_t *p = row;
    for (int64_t b = 0; b < K / 32; b++) {
        uint16_t h;
        if (t == PE_W_Q8_0) {
            memcpy(&h, p + b * 34, 2);
            d[b] = pe_half_to_float(h);
            memcpy(q + b * 32, p + b * 34 + 2, 32);
        } else {
            memcpy(&h, p + b * 18, 2);
            d[b] = pe_half_to_float(h);
            const uint8_t *qs = p + b * 18 + 2;
            for (int j = 0; j < 16; j++) {
                q[b * 32 + j] = (int8_t)((qs[j] & 0x0f) - 8);
                q[b * 32 + j + 16] = (int8_t)((qs[j] >> 4) - 8);
            }
        }
    }
}

void pe_widen_row(pe_wtype t, const void *row, int64_t K, float *out) {
    switch (t) {
    case PE_W_F32: memcpy(out, row, (size_t)K * 4); return;
    case PE_W_F16: {
        const uint8_t *p = row;
        for (int64_t i = 0; i < K; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = pe_half_to_float(h); }
        return;
    }
    case PE_W_BF16: {
        const uint8_t *p = row;
        for (int64_t i = 0; i < K; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = pe_bf16_to_float(h); }
        return;
    }
    case PE_W_Q8_0: case PE_W_Q4_0: {
        int8_t q[32];
        float d;
        for (int64_t b = 0; b < K / 32; b++) {
            pe_row_to_int8(t, (const uint8_t *)row + b * (t == PE_W_Q8_0 ? 34 : 18), 32, q, &d);
            for (int j = 0; j < 32; j++) out[b * 32 + j] = d * (float)q[j];
        }
        return;
    }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c")))
static void widen_f16_f16c(const uint8_t *p, int64_t K, float *out) {
    int64_t i = 0;
    for (; i + 8 <= K; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < K; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = pe_half_to_float(h); }
}
#endif

static void widen_row_fast(pe_wtype t, const void *row, int64_t K, float *out) {
#if defined(__x86_64__)
    if (t == PE_W_F16 && (pe_cpu_features() & PE_CPU_AVX2)) { widen_f16_f16c(row, K, out); return; }
#endif
    pe_widen_row(t, row, K, out);
}

/* ---- activations ---- */

PE_CLONES void pe_quantize_row_q8_ref(const float *x, int64_t K, int8_t *q, float *d) {
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + b * 32;
        float part[16] = {0}; /* lane maxima: vectorises without reassociation */
        for (int j = 0; j < 32; j += 16)
            for (int l = 0; l < 16; l++) { float a = fabsf(v[j + l]); part[l] = a > part[l] ? a : part[l]; }
        float amax = 0;
        for (int l = 0; l < 16; l++) amax = part[l] > amax ? part[l] : amax;
        float s = amax / 127.0f;
        float id = s != 0 ? 1.0f / s : 0.0f;
        d[b] = s;
        for (int j = 0; j < 32; j++) q[b * 32 + j] = (int8_t)nearbyintf(v[j] * id);
    }
}

#if defined(__x86_64__)
/* The same operations with AVX-512: lane maxima of |v| over the two halves, the same scalar
 * scale, v · id rounded half to even (the default MXCSR mode) and narrowed. The compiler does
 * not vectorise the scalar version's rounding and narrowing, which made it ~10 % of a step. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
static void quantize_row_q8_avx512(const float *x, int64_t K, int8_t *q, float *d) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + b * 32;
        __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
        __m512 m = _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1));
        float part[16], amax = 0;
        _mm512_storeu_ps(part, m);
        for (int l = 0; l < 16; l++) amax = part[l] > amax ? part[l] : amax;
        float s = amax / 127.0f;
        float id = s != 0 ? 1.0f / s : 0.0f;
        d[b] = s;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(q + b * 32), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + b * 32 + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

/* The same with AVX2: |v| maxima over four vectors, the same scalar scale, v · id rounded half to
 * even (cvtps) and narrowed with saturation (|v · id| ≤ 127 rounds inside int8 anyway). */
__attribute__((target("avx2,fma")))
static void quantize_row_q8_avx2(const float *x, int64_t K, int8_t *q, float *d) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        float part[8], amax = 0;
        _mm256_storeu_ps(part, m);
        for (int l = 0; l < 8; l++) amax = part[l] > amax ? part[l] : amax;
        float s = amax / 127.0f;
        float id = s != 0 ? 1.0f / s : 0.0f;
        d[b] = s;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        /* packs interleave 128-bit lanes: [0-3 8-11 4-7 12-15] → bytes in lane order after the permute */
        __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
        __m256i b8 = _mm256_packs_epi16(w01, w23);
        b8 = _mm256_permutevar8x32_epi32(b8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + b * 32), b8);
    }
}
#endif

void pe_quantize_row_q8(const float *x, int64_t K, int8_t *q, float *d) {
#if defined(__x86_64__)
    if (pe_isa_supported(PE_ISA_F32_512)) { quantize_row_q8_avx512(x, K, q, d); return; }
    if (pe_isa_supported(PE_ISA_AVX2)) { quantize_row_q8_avx2(x, K, q, d); return; }
#endif
    pe_quantize_row_q8_ref(x, K, q, d);
}

typedef struct {
    const float *x; int64_t ldx, M, K;
    const uint8_t *w; pe_wtype wt; int64_t N; size_t wrow;
    const float *bias; float *y; int64_t ldy; int accumulate;
    pe_isa isa;
    int8_t *xq; float *xd;               /* int8 activations: values (+128 on the VNNI path), scales */
    int16_t *xw;                         /* the AVX2 path's activations: the int8 values widened */
    uint16_t *xb; int64_t kp;            /* bf16 activations, rows of kp (K rounded up to even) */
    int64_t ncols;                       /* columns per task */
    int64_t nchunks, mchunks, mrows;     /* tasks = nchunks × mchunks, mrows rows each */
} job;

PE_CLONES static void offset_bytes(int8_t *q, int64_t n) {
    for (int64_t k = 0; k < n; k++) q[k] = (int8_t)((uint8_t)q[k] ^ 0x80);
}

PE_CLONES static void widen_bytes(const int8_t *q, int64_t n, int16_t *o) {
    for (int64_t k = 0; k < n; k++) o[k] = q[k];
}

static void prep_q8_task(void *ctx, int64_t part) {
    job *j = ctx;
    int64_t KB = j->K / 32;
    for (int64_t r = part * 16; r < j->M && r < part * 16 + 16; r++) {
        if (j->isa == PE_ISA_AVX2) {
            int8_t q[1024];
            for (int64_t k0 = 0; k0 < j->K; k0 += 1024) {
                int64_t n = j->K - k0 < 1024 ? j->K - k0 : 1024;
                pe_quantize_row_q8(j->x + r * j->ldx + k0, n, q, j->xd + r * KB + k0 / 32);
                widen_bytes(q, n, j->xw + r * j->K + k0);
            }
            continue;
        }
        pe_quantize_row_q8(j->x + r * j->ldx, j->K, j->xq + r * j->K, j->xd + r * KB);
        if (j->isa == PE_ISA_VNNI512) offset_bytes(j->xq + r * j->K, j->K); /* q + 128 as unsigned */
    }
}

PE_CLONES static void to_bf16(const float *v, int64_t n, uint16_t *o) {
    for (int64_t k = 0; k < n; k++) o[k] = pe_float_to_bf16(v[k]);
}

static void prep_bf16_task(void *ctx, int64_t part) {
    job *j = ctx;
    for (int64_t r = part * 16; r < j->M && r < part * 16 + 16; r++) {
        uint16_t *o = j->xb + r * j->kp;
        to_bf16(j->x + r * j->ldx, j->K, o);
        if (j->kp > j->K) o[j->K] = 0;
    }
}

/* ---- output ---- */

static inline void store_row(const job *j, int64_t m, int64_t n0, int cols, const float *acc) {
    float *y = j->y + m * j->ldy + n0;
    for (int c = 0; c < cols; c++) {
        float v = acc[c] + (j->bias ? j->bias[n0 + c] : 0.0f);
        y[c] = j->accumulate ? y[c] + v : v;
    }
}

/* ---- int8 panels ---- */

#if defined(__x86_64__)
/* Panel of columns n0..n0+31: per K block 32 f32 scales, 32 int32 corrections −128·Σq (the
 * VNNI path's activations carry +128: vpdpbusd multiplies unsigned by signed), then 8 groups
 * of 4 consecutive k for each of the 32 columns, signed (columns past N: all 0). Per block and
 * group one 4-byte gather of 8 columns (Q4_0: the gathered nibbles split into groups g and
 * g + 4), scales by a gather widened with F16C. */
#ifndef PACK_AHEAD
#define PACK_AHEAD 4
#endif
__attribute__((target("avx2,fma,f16c")))
static void pack_int8(const job *j, int64_t n0, uint8_t *buf) {
    int64_t KB = j->K / 32;
    int q8 = j->wt == PE_W_Q8_0;
    int64_t bb = q8 ? 34 : 18;
    int valid = j->N - n0 < NR ? (int)(j->N - n0) : NR;
    const uint8_t *base = j->w + (size_t)n0 * j->wrow;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i idx[4], mask[4];
    for (int q = 0; q < 4; q++) {
        __m256i c = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * q));
        idx[q] = _mm256_mullo_epi32(c, _mm256_set1_epi32((int32_t)j->wrow));
        mask[q] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), c);
    }
    const __m256i zero = _mm256_setzero_si256(), nib = _mm256_set1_epi8(0x0f);
    const __m256i off4 = _mm256_set1_epi8(-8), ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    for (int64_t b = 0; b < KB; b++) {
        const uint8_t *blk = base + b * bb;
        uint8_t *p = buf + b * QPANEL_KB_BYTES;
        if (b % 2 == 0 && b + PACK_AHEAD < KB) /* every column's row, PACK_AHEAD blocks ahead */
            for (int c = 0; c < valid; c++) _mm_prefetch((const char *)(blk + PACK_AHEAD * bb + c * j->wrow), _MM_HINT_T0);
        for (int q = 0; q < 4; q++) {
            __m256i h = _mm256_and_si256(_mm256_mask_i32gather_epi32(zero, (const int *)blk, idx[q], mask[q], 1), lo16);
            __m128i h16 = _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm256_storeu_ps((float *)p + 8 * q, _mm256_cvtph_ps(h16));
        }
        __m256i sum[4] = {zero, zero, zero, zero};
        for (int g = 0; g < (q8 ? 8 : 4); g++)
            for (int q = 0; q < 4; q++) {
                __m256i v = _mm256_mask_i32gather_epi32(zero, (const int *)(blk + 2 + 4 * g), idx[q], mask[q], 1);
                if (q8) {
                    _mm256_storeu_si256((__m256i *)(p + 256 + g * 128 + q * 32), v);
                } else {
                    __m256i lo = _mm256_and_si256(_mm256_add_epi8(_mm256_and_si256(v, nib), off4), mask[q]);
                    __m256i hi = _mm256_and_si256(_mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib), off4), mask[q]);
                    _mm256_storeu_si256((__m256i *)(p + 256 + g * 128 + q * 32), lo);
                    _mm256_storeu_si256((__m256i *)(p + 256 + (g + 4) * 128 + q * 32), hi);
                    v = _mm256_add_epi8(lo, hi); /* |lo + hi| ≤ 16: no overflow */
                }
                sum[q] = _mm256_add_epi32(sum[q], _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
            }
        for (int q = 0; q < 4; q++)
            _mm256_storeu_si256((__m256i *)(p + 128 + q * 32), _mm256_sub_epi32(zero, _mm256_slli_epi32(sum[q], 7)));
    }
}

#ifndef MR_VNNI
#define MR_VNNI 6
#endif
#ifndef KC_BLOCKS
#define KC_BLOCKS 64
#endif
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
static void kernel_vnni(const job *j, const uint8_t *panel, int64_t m0, int mr, int64_t n0, int cols,
                        int64_t b0, int64_t b1, float *part) {
    int64_t K = j->K, KB = K / 32;
    const int8_t *xq[MR_VNNI];
    const float *xd[MR_VNNI];
    for (int r = 0; r < MR_VNNI; r++) {
        int64_t rr = m0 + (r < mr ? r : mr - 1);
        xq[r] = j->xq + rr * K; xd[r] = j->xd + rr * KB;
    }
    __m512 acc[MR_VNNI][2];
    for (int r = 0; r < MR_VNNI; r++) {
        if (b0 == 0) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        else { acc[r][0] = _mm512_loadu_ps(part + r * 32); acc[r][1] = _mm512_loadu_ps(part + r * 32 + 16); }
    }
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *p = panel + b * QPANEL_KB_BYTES;
        /* (q + 128)·w summed from −128·Σw is q·w */
        __m512i c0 = _mm512_loadu_si512(p + 128), c1 = _mm512_loadu_si512(p + 192);
        __m512i s[MR_VNNI][2];
        for (int r = 0; r < MR_VNNI; r++) { s[r][0] = c0; s[r][1] = c1; }
        for (int g = 0; g < 8; g++) {
            __m512i w0 = _mm512_loadu_si512(p + 256 + g * 128);
            __m512i w1 = _mm512_loadu_si512(p + 256 + g * 128 + 64);
            for (int r = 0; r < MR_VNNI; r++) {
                int32_t v;
                memcpy(&v, xq[r] + b * 32 + g * 4, 4);
                __m512i bx = _mm512_set1_epi32(v);
                s[r][0] = _mm512_dpbusd_epi32(s[r][0], bx, w0);
                s[r][1] = _mm512_dpbusd_epi32(s[r][1], bx, w1);
            }
        }
        __m512 d0 = _mm512_loadu_ps((const float *)p), d1 = _mm512_loadu_ps((const float *)p + 16);
        for (int r = 0; r < MR_VNNI; r++) {
            __m512 dx = _mm512_set1_ps(xd[r][b]);
            acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][0]), _mm512_mul_ps(d0, dx), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][1]), _mm512_mul_ps(d1, dx), acc[r][1]);
        }
    }
    if (b1 < KB) { /* partial sums of this K chunk, continued by the next */
        for (int r = 0; r < MR_VNNI; r++) { _mm512_storeu_ps(part + r * 32, acc[r][0]); _mm512_storeu_ps(part + r * 32 + 16, acc[r][1]); }
        return;
    }
    for (int r = 0; r < mr; r++) {
        float out[32];
        _mm512_storeu_ps(out, acc[r][0]);
        _mm512_storeu_ps(out + 16, acc[r][1]);
        store_row(j, m0 + r, n0, cols, out);
    }
}

/* The AVX2 path multiplies int16: both operands widened from int8, vpmaddwd sums the products
 * of one pair of inputs exactly into int32 (vpmaddubsw's sign trick needs a third operation per
 * product on CPUs that issue it on the multiply ports: measured 1.5 cycles per 32 products on
 * Zen 3 against 1 for two vpmaddwd). Panel of 16 columns: per K block 16 f32 scales, then 16
 * groups (pairs of inputs) × 16 columns × 2 int16 (columns past N: all 0). */
#define NR16 16
#define QPANEL16_KB_BYTES (64 + 16 * 64)
__attribute__((target("avx2,fma,f16c")))
static void pack_int16(const job *j, int64_t n0, uint8_t *buf) {
    int64_t KB = j->K / 32;
    int q8 = j->wt == PE_W_Q8_0;
    int64_t bb = q8 ? 34 : 18;
    int valid = j->N - n0 < NR16 ? (int)(j->N - n0) : NR16;
    const uint8_t *base = j->w + (size_t)n0 * j->wrow;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i idx[2], mask[2];
    for (int q = 0; q < 2; q++) {
        __m256i c = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * q));
        idx[q] = _mm256_mullo_epi32(c, _mm256_set1_epi32((int32_t)j->wrow));
        mask[q] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), c);
    }
    const __m256i zero = _mm256_setzero_si256(), nib = _mm256_set1_epi8(0x0f), off4 = _mm256_set1_epi8(-8);
    const __m256i lo16 = _mm256_set1_epi32(0xffff), evens = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int64_t b = 0; b < KB; b++) {
        const uint8_t *blk = base + b * bb;
        uint8_t *p = buf + b * QPANEL16_KB_BYTES;
        if (b % 4 == 0 && b + PACK_AHEAD < KB) /* every column's row, PACK_AHEAD blocks ahead */
            for (int c = 0; c < valid; c++) _mm_prefetch((const char *)(blk + PACK_AHEAD * bb + c * j->wrow), _MM_HINT_T0);
        for (int q = 0; q < 2; q++) {
            __m256i h = _mm256_and_si256(_mm256_mask_i32gather_epi32(zero, (const int *)blk, idx[q], mask[q], 1), lo16);
            __m128i h16 = _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm256_storeu_ps((float *)p + 8 * q, _mm256_cvtph_ps(h16));
        }
        /* a gather takes 4 inputs (2 pairs) of 8 columns; pairs g and g + 1 of those columns */
        for (int g4 = 0; g4 < (q8 ? 8 : 4); g4++)
            for (int q = 0; q < 2; q++) {
                __m256i v = _mm256_mask_i32gather_epi32(zero, (const int *)(blk + 2 + 4 * g4), idx[q], mask[q], 1);
                __m256i parts[2] = {v, zero};
                int np = 1, gs[2] = {2 * g4, 0};
                if (!q8) { /* nibbles: inputs 4·g4 … +3 in the low ones, 16 + 4·g4 … +3 in the high ones */
                    parts[0] = _mm256_and_si256(_mm256_add_epi8(_mm256_and_si256(v, nib), off4), mask[q]);
                    parts[1] = _mm256_and_si256(_mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib), off4), mask[q]);
                    np = 2; gs[1] = 8 + 2 * g4;
                }
                for (int t = 0; t < np; t++) {
                    /* int16 of columns 0-3 and 4-7: per column its two pairs, side by side */
                    __m256i a = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(parts[t]));
                    __m256i c = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(parts[t], 1));
                    a = _mm256_permutevar8x32_epi32(a, evens); /* [c0..3 pair 0 | c0..3 pair 1] */
                    c = _mm256_permutevar8x32_epi32(c, evens);
                    uint8_t *o = p + 64 + gs[t] * 64 + q * 32;
                    _mm256_storeu_si256((__m256i *)o, _mm256_permute2x128_si256(a, c, 0x20));
                    _mm256_storeu_si256((__m256i *)(o + 64), _mm256_permute2x128_si256(a, c, 0x31));
                }
            }
    }
}

#ifndef MR_AVX2
#define MR_AVX2 6
#endif
__attribute__((target("avx2,fma")))
static void kernel_avx2(const job *j, const uint8_t *panel, int64_t m0, int mr, int64_t n0, int cols) {
    int64_t K = j->K, KB = K / 32;
    const int16_t *xw[MR_AVX2];
    const float *xd[MR_AVX2];
    for (int r = 0; r < MR_AVX2; r++) {
        int64_t rr = m0 + (r < mr ? r : mr - 1);
        xw[r] = j->xw + rr * K; xd[r] = j->xd + rr * KB;
    }
    float acc[MR_AVX2][NR16] __attribute__((aligned(32))) = {{0}};
    for (int64_t b = 0; b < KB; b++) {
        const uint8_t *p = panel + b * QPANEL16_KB_BYTES;
        __m256i s[MR_AVX2][2];
        for (int r = 0; r < MR_AVX2; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
        for (int g = 0; g < 16; g++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 64 + g * 64));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 64 + g * 64 + 32));
            for (int r = 0; r < MR_AVX2; r++) {
                int32_t v;
                memcpy(&v, xw[r] + b * 32 + g * 2, 4);
                __m256i bx = _mm256_set1_epi32(v);
                s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(bx, w0));
                s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(bx, w1));
            }
        }
        __m256 d0 = _mm256_loadu_ps((const float *)p), d1 = _mm256_loadu_ps((const float *)p + 8);
        for (int r = 0; r < MR_AVX2; r++) {
            __m256 dx = _mm256_set1_ps(xd[r][b]);
            _mm256_store_ps(acc[r], _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][0]), _mm256_mul_ps(d0, dx), _mm256_load_ps(acc[r])));
            _mm256_store_ps(acc[r] + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][1]), _mm256_mul_ps(d1, dx), _mm256_load_ps(acc[r] + 8)));
        }
    }
    for (int r = 0; r < mr; r++) store_row(j, m0 + r, n0, cols, acc[r]);
}

/* bf16 panel: per pair of k, the pair of each of the 32 columns (zeros past N and past K). */
static void pack_bf16(const job *j, int64_t n0, uint16_t *buf) {
    int64_t pairs = j->kp / 2;
    for (int c = 0; c < NR; c++) {
        int valid = n0 + c < j->N;
        const uint8_t *row = valid ? j->w + (size_t)(n0 + c) * j->wrow : NULL;
        for (int64_t k = 0; k < pairs; k++) {
            uint16_t a = 0, b = 0;
            if (valid) {
                memcpy(&a, row + 4 * k, 2);
                if (2 * k + 1 < j->K) memcpy(&b, row + 4 * k + 2, 2);
            }
            buf[k * 64 + c * 2] = a;
            buf[k * 64 + c * 2 + 1] = b;
        }
    }
}

#define MR_BF16 6
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
static void kernel_bf16(const job *j, const uint16_t *panel, int64_t m0, int mr, int64_t n0, int cols) {
    int64_t pairs = j->kp / 2;
    const uint16_t *xb[MR_BF16];
    for (int r = 0; r < MR_BF16; r++) xb[r] = j->xb + (m0 + (r < mr ? r : mr - 1)) * j->kp;
    __m512 acc[MR_BF16][2];
    for (int r = 0; r < MR_BF16; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < pairs; k++) {
        __m512i w0 = _mm512_loadu_si512(panel + k * 64), w1 = _mm512_loadu_si512(panel + k * 64 + 32);
        for (int r = 0; r < MR_BF16; r++) {
            int32_t v;
            memcpy(&v, xb[r] + 2 * k, 4);
            __m512i bx = _mm512_set1_epi32(v);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)w0, (__m512bh)bx);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)w1, (__m512bh)bx);
        }
    }
    for (int r = 0; r < mr; r++) {
        float out[32];
        _mm512_storeu_ps(out, acc[r][0]);
        _mm512_storeu_ps(out + 16, acc[r][1]);
        store_row(j, m0 + r, n0, cols, out);
    }
}
#endif

/* ---- tasks ---- */

static void rows_of(const job *j, int64_t part, int64_t *n0, int64_t *m0, int64_t *m1) {
    int64_t nc = part % j->nchunks, mc = part / j->nchunks;
    *n0 = nc * j->ncols;
    *m0 = mc * j->mrows;
    *m1 = *m0 + j->mrows < j->M ? *m0 + j->mrows : j->M;
}

static void int8_task(void *ctx, int64_t part) {
    job *j = ctx;
    int64_t n0, m0, m1;
    rows_of(j, part, &n0, &m0, &m1);
#if defined(__x86_64__)
    if (j->isa == PE_ISA_VNNI512) {
        /* The task's panels are packed side by side. K goes in chunks of KC_BLOCKS blocks: a row
         * tile's chunk of activations stays in L1 while it passes every panel, and the panels'
         * chunks stay in L2 for the next tile; partial sums wait in `part` (rows × 32 floats per
         * panel). */
        int64_t KB = j->K / 32, tiles = (m1 - m0 + MR_VNNI - 1) / MR_VNNI;
        int64_t tcols = j->N - n0 < j->ncols ? j->N - n0 : j->ncols;
        int np = (int)((tcols + NR - 1) / NR);
        size_t pbytes = (size_t)KB * QPANEL_KB_BYTES;
        uint8_t *panel = must(pe_scratch_acquire(pbytes * (size_t)np));
        float *part = KB > KC_BLOCKS ? must(pe_scratch_acquire((size_t)tiles * np * MR_VNNI * 32 * 4)) : NULL;
        for (int p = 0; p < np; p++) pack_int8(j, n0 + p * NR, panel + p * pbytes);
        for (int64_t b0 = 0; b0 < KB; b0 += KC_BLOCKS) {
            int64_t b1 = b0 + KC_BLOCKS < KB ? b0 + KC_BLOCKS : KB;
            for (int64_t t = 0; t < tiles; t++) {
                int64_t m = m0 + t * MR_VNNI;
                int mr = m1 - m < MR_VNNI ? (int)(m1 - m) : MR_VNNI;
                for (int p = 0; p < np; p++) {
                    int64_t c0 = n0 + p * NR;
                    kernel_vnni(j, panel + p * pbytes, m, mr, c0, j->N - c0 < NR ? (int)(j->N - c0) : NR, b0, b1,
                                part ? part + (t * np + p) * MR_VNNI * 32 : NULL);
                }
            }
        }
        pe_scratch_release(part);
        pe_scratch_release(panel);
    } else {
        uint8_t *panel = must(pe_scratch_acquire((size_t)(j->K / 32) * QPANEL16_KB_BYTES));
        int cols = j->N - n0 < NR16 ? (int)(j->N - n0) : NR16;
        pack_int16(j, n0, panel);
        for (int64_t m = m0; m < m1; m += MR_AVX2)
            kernel_avx2(j, panel, m, m1 - m < MR_AVX2 ? (int)(m1 - m) : MR_AVX2, n0, cols);
        pe_scratch_release(panel);
    }
#endif
}

static void bf16_task(void *ctx, int64_t part) {
    job *j = ctx;
    int64_t n0, m0, m1;
    rows_of(j, part, &n0, &m0, &m1);
    uint16_t *panel = must(pe_scratch_acquire((size_t)j->kp * NR * 2));
    int cols = j->N - n0 < NR ? (int)(j->N - n0) : NR;
#if defined(__x86_64__)
    pack_bf16(j, n0, panel);
    for (int64_t m = m0; m < m1; m += MR_BF16)
        kernel_bf16(j, panel, m, m1 - m < MR_BF16 ? (int)(m1 - m) : MR_BF16, n0, cols);
#endif
    pe_scratch_release(panel);
}

static void sgemm_task(void *ctx, int64_t part) {
    job *j = ctx;
    int64_t n0, m0, m1;
    rows_of(j, part, &n0, &m0, &m1);
    int64_t cols = j->N - n0 < j->ncols ? j->N - n0 : j->ncols;
    int64_t rows = m1 - m0;
    if (cols <= 0 || rows <= 0) return;
    const float *b;
    float *wide = NULL;
    if (j->wt == PE_W_F32) {
        b = (const float *)(j->w + (size_t)n0 * j->wrow);
    } else {
        wide = must(pe_scratch_acquire((size_t)cols * j->K * 4));
        for (int64_t c = 0; c < cols; c++) widen_row_fast(j->wt, j->w + (size_t)(n0 + c) * j->wrow, j->K, wide + c * j->K);
        b = wide;
    }
    float *y = j->y + m0 * j->ldy + n0;
    float beta = j->accumulate ? 1.0f : 0.0f;
    if (j->bias) {
        for (int64_t m = 0; m < rows; m++)
            for (int64_t c = 0; c < cols; c++) y[m * j->ldy + c] = (j->accumulate ? y[m * j->ldy + c] : 0.0f) + j->bias[n0 + c];
        beta = 1.0f;
    }
    pe_sgemm(0, 1, rows, cols, j->K, 1.0f, j->x + m0 * j->ldx, j->ldx, b, j->K, beta, y, j->ldy);
    pe_scratch_release(wide);
}

/* ---- choice ---- */

static int is_quant(pe_wtype t) { return t == PE_W_Q8_0 || t == PE_W_Q4_0; }
static int known(pe_wtype t) { return t == PE_W_F32 || t == PE_W_F16 || t == PE_W_BF16 || is_quant(t); }

pe_isa pe_linear_isa(pe_wtype t, pe_linear_opts o) {
    if (!known(t)) return (pe_isa)-1;
    if (o.isa != PE_ISA_AUTO) {
        if (!pe_isa_supported(o.isa)) return (pe_isa)-1;
        switch (o.isa) {
        case PE_ISA_REF: case PE_ISA_SGEMM: return o.isa;
        case PE_ISA_AVX2: case PE_ISA_VNNI512: return is_quant(t) && !o.compute_f32 ? o.isa : (pe_isa)-1;
        case PE_ISA_BF16_512: return t == PE_W_BF16 && !o.compute_f32 ? o.isa : (pe_isa)-1;
        default: return (pe_isa)-1;
        }
    }
    if (o.compute_f32) return PE_ISA_SGEMM;
    if (is_quant(t)) {
        if (pe_isa_supported(PE_ISA_VNNI512)) return PE_ISA_VNNI512;
        if (pe_isa_supported(PE_ISA_AVX2)) return PE_ISA_AVX2;
        return PE_ISA_REF;
    }
    if (t == PE_W_BF16 && pe_isa_supported(PE_ISA_BF16_512) && pe_bf16_pays()) return PE_ISA_BF16_512;
    return PE_ISA_SGEMM;
}

/* Arithmetic of the reference for these options: 0 f32, 1 int8 blocks, 2 bf16. */
static int arithmetic(pe_wtype t, pe_linear_opts o) {
    if (o.compute_f32) return 0;
    if (is_quant(t)) return o.isa == PE_ISA_SGEMM ? 0 : 1;
    if (t == PE_W_BF16) {
        pe_isa isa = o.isa == PE_ISA_AUTO ? pe_linear_isa(t, o) : o.isa;
        return isa == PE_ISA_BF16_512 ? 2 : 0;
    }
    return 0;
}

static int bad_args(const float *x, int64_t ldx, int64_t M, int64_t K, const void *w, pe_wtype t, int64_t N,
                    const float *y, int64_t ldy) {
    if (M < 0 || K <= 0 || N < 0 || !known(t) || pe_row_bytes(t, K) == 0) return 1;
    if (M > 0 && N > 0 && (!x || !w || !y || ldx < K || ldy < N)) return 1;
    if (K > INT32_MAX || N > INT32_MAX || M > INT32_MAX || ldx > INT32_MAX || ldy > INT32_MAX) return 1;
    return 0;
}

int pe_linear_ref(const float *x, int64_t ldx, int64_t M, int64_t K, const void *w, pe_wtype t, int64_t N,
                  const float *bias, float *y, int64_t ldy, pe_linear_opts o) {
    if (bad_args(x, ldx, M, K, w, t, N, y, ldy)) return -1;
    size_t wrow = pe_row_bytes(t, K);
    int arith = arithmetic(t, o);
    int64_t KB = K / 32;
    int8_t *xq = NULL, *wq = NULL;
    float *xd = NULL, *wd = NULL, *wf = NULL;
    if (arith == 1) {
        xq = must(malloc((size_t)K)); xd = must(malloc((size_t)KB * 4));
        wq = must(malloc((size_t)K)); wd = must(malloc((size_t)KB * 4));
    } else {
        wf = must(malloc((size_t)K * 4));
    }
    for (int64_t n = 0; n < N; n++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)n * wrow;
        if (arith == 1) pe_row_to_int8(t, row, K, wq, wd); else pe_widen_row(t, row, K, wf);
        for (int64_t m = 0; m < M; m++) {
            const float *xr = x + m * ldx;
            float acc = 0;
            if (arith == 1) {
                pe_quantize_row_q8(xr, K, xq, xd);
                for (int64_t b = 0; b < KB; b++) {
                    int32_t s = 0;
                    for (int k = 0; k < 32; k++) s += (int32_t)xq[b * 32 + k] * (int32_t)wq[b * 32 + k];
                    acc = fmaf((float)s, wd[b] * xd[b], acc);
                }
            } else if (arith == 2) {
                for (int64_t k = 0; k < K; k++) acc += pe_bf16_to_float(pe_float_to_bf16(xr[k])) * wf[k];
            } else {
                double a = 0;
                for (int64_t k = 0; k < K; k++) a += (double)xr[k] * (double)wf[k];
                acc = (float)a;
            }
            float v = acc + (bias ? bias[n] : 0.0f);
            y[m * ldy + n] = o.accumulate ? y[m * ldy + n] + v : v;
        }
    }
    free(xq); free(xd); free(wq); free(wd); free(wf);
    return PE_ISA_REF;
}

typedef struct {
    job *jobs;
    int count;
    int64_t offsets[PE_LINEAR_MAX_OUTS + 1];
    pe_task_fn fn;
} many_job;

static void many_task(void *ctx, int64_t part) {
    many_job *m = ctx;
    int k = 0;
    while (part >= m->offsets[k + 1]) k++;
    m->fn(&m->jobs[k], part - m->offsets[k]);
}

int pe_linear_many(const float *x, int64_t ldx, int64_t M, int64_t K, const pe_linear_out *outs, int count,
                   pe_linear_opts o) {
    if (count < 1 || count > PE_LINEAR_MAX_OUTS || !outs) return -1;
    pe_wtype t = outs[0].wtype;
    for (int k = 0; k < count; k++)
        if (outs[k].wtype != t || bad_args(x, ldx, M, K, outs[k].w, t, outs[k].N, outs[k].y, outs[k].ldy)) return -1;
    pe_isa isa = pe_linear_isa(t, o);
    if ((int)isa < 0) return -1;
    if (M == 0) return isa;
    if (isa == PE_ISA_REF) {
        for (int k = 0; k < count; k++)
            pe_linear_ref(x, ldx, M, K, outs[k].w, t, outs[k].N, outs[k].bias, outs[k].y, outs[k].ldy, o);
        return isa;
    }
    job js[PE_LINEAR_MAX_OUTS];
    int threads = pe_threads();
    int64_t want = 8 * (int64_t)threads;  /* tasks, for balance */
    int64_t panels = 0;
    for (int k = 0; k < count; k++) {
        job *j = &js[k];
        memset(j, 0, sizeof *j);
        j->x = x; j->ldx = ldx; j->M = M; j->K = K; j->w = outs[k].w; j->wt = t; j->N = outs[k].N;
        j->wrow = pe_row_bytes(t, K); j->bias = outs[k].bias; j->y = outs[k].y; j->ldy = outs[k].ldy;
        j->accumulate = o.accumulate; j->isa = isa;
        int64_t N = j->N;
        if (isa == PE_ISA_SGEMM) {
            /* column chunks of 16·c, at most 256 wide, a multiple of the threads in number */
            int64_t chunks = threads;
            while ((N + chunks - 1) / chunks > 1024) chunks += threads;
            int64_t nc = ((N + chunks - 1) / chunks + 15) / 16 * 16;
            j->ncols = nc > 0 ? nc : 16;
        } else if (isa == PE_ISA_VNNI512) {
            j->ncols = NR * VNNI_PANELS;
        } else if (isa == PE_ISA_AVX2) {
            j->ncols = NR16;
        } else {
            j->ncols = NR;
        }
        j->nchunks = (N + j->ncols - 1) / j->ncols;
        panels += j->nchunks;
    }
    many_job m = {js, count, {0}, NULL};
    int64_t mblocks = (M + 63) / 64;  /* at least 64 rows a task */
    int64_t mchunks = panels >= want ? 1 : (want + panels - 1) / (panels > 0 ? panels : 1);
    if (mchunks > mblocks) mchunks = mblocks;
    if (mchunks < 1) mchunks = 1;
    for (int k = 0; k < count; k++) {
        js[k].mchunks = mchunks;
        js[k].mrows = (M + mchunks - 1) / mchunks;
        m.offsets[k + 1] = m.offsets[k] + js[k].nchunks * mchunks;
    }
    void *buf = NULL;
    if (isa == PE_ISA_VNNI512 || isa == PE_ISA_AVX2) {
        int64_t KB = K / 32;
        size_t qbytes = (size_t)M * K * (isa == PE_ISA_AVX2 ? 2 : 1), dbytes = (size_t)M * KB * 4;
        buf = must(pe_scratch_acquire(qbytes + dbytes + 64));
        for (int k = 0; k < count; k++) {
            js[k].xd = (float *)buf;
            js[k].xq = (int8_t *)((uint8_t *)buf + dbytes);
            js[k].xw = (int16_t *)((uint8_t *)buf + dbytes);
        }
        pe_pool_run(prep_q8_task, &js[0], (M + 15) / 16);  /* once for every output */
        m.fn = int8_task;
    } else if (isa == PE_ISA_BF16_512) {
        int64_t kp = (K + 1) / 2 * 2;
        buf = must(pe_scratch_acquire((size_t)M * kp * 2));
        for (int k = 0; k < count; k++) { js[k].kp = kp; js[k].xb = buf; }
        pe_pool_run(prep_bf16_task, &js[0], (M + 15) / 16);
        m.fn = bf16_task;
    } else {
        m.fn = sgemm_task;
    }
    pe_pool_run(many_task, &m, m.offsets[count]);
    pe_scratch_release(buf);
    return isa;
}

int pe_linear(const float *x, int64_t ldx, int64_t M, int64_t K, const void *w, pe_wtype t, int64_t N,
              const float *bias, float *y, int64_t ldy, pe_linear_opts o) {
    if (bad_args(x, ldx, M, K, w, t, N, y, ldy)) return -1;
    if (N == 0) return pe_linear_isa(t, o);
    pe_linear_out out = {w, t, N, bias, y, ldy};
    return pe_linear_many(x, ldx, M, K, &out, 1, o);
}
