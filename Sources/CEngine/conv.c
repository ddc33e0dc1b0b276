/* 3×3 convolution (stride 1, padding 1) as an implicit matrix product, bf16 products summed in
 * f32 (vdpbf16ps) or f32 products (FMA), without an im2col matrix and without packing.
 *
 * The input band is stored zero-padded in bf16 with channels in interleaved pairs: pair-plane
 * cp holds, for every pixel of the (rows + 2) × (w + 2) padded band, the values of channels 2cp
 * and 2cp + 1 side by side — the operand layout vdpbf16ps wants. Output pixel (r, c) reads the
 * 3 × 3 window whose top-left corner is padded pixel v = r·(w + 2) + c. Numbering the outputs
 * by that "virtual" index v (two unused columns per row), the input of tap (ky, kx) for outputs
 * v … v + 31 is 32 consecutive pixels of each pair-plane, starting at v + ky·(w + 2) + kx: one
 * 128-byte run read straight from the band. A task takes 4 × 32 consecutive virtual outputs and
 * passes every output channel's weights over them, 6 channels × 32 pixels at a time; outputs at
 * unused virtual columns are masked off when stored. The f32 variant stores one plane per
 * channel (no pairs) and multiplies with FMA, 6 channels × 32 pixels as well. */
#include "engine_internal.h"
#include <stdio.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CONV_NR 32     /* virtual pixels per panel */
#define CONV_PANELS 4  /* panels per task */
#define CONV_MR 6      /* output channels per micro-tile */

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "pixconv: out of memory for engine scratch\n");
        abort();
    }
    return p;
}

int64_t pe_conv3x3_band_stride(int64_t rows, int64_t w) { return (rows + 2) * (w + 2) + CONV_NR; }

/* ---- band ---- */

typedef struct {
    pe_conv_input in;
    int64_t r0, rows, bps, ih, iw;
    void *band;
    int f32;
} fill_job;

/* One input row (after upsampling) of channel c through the transform, into row[0 … iw). */
PE_CLONES static void transformed_row(const pe_conv_input *in, int64_t c, int64_t iy, int64_t iw, float *row) {
    const float *src = in->x + (c * in->h + (in->upsample2x ? iy / 2 : iy)) * in->w;
    if (in->upsample2x) for (int64_t i = 0; i < iw; i++) row[i] = src[i / 2];
    else memcpy(row, src, (size_t)iw * 4);
    if (in->scale) {
        float a = in->scale[c], b = in->shift ? in->shift[c] : 0.0f;
        for (int64_t i = 0; i < iw; i++) row[i] = row[i] * a + b;
    }
    if (in->silu) for (int64_t i = 0; i < iw; i++) row[i] = row[i] / (1.0f + pe_exp_approx(-row[i]));
}

PE_CLONES static void interleave_bf16(const float *a, const float *b, int64_t n, uint16_t *out) {
    for (int64_t i = 0; i < n; i++) { out[2 * i] = pe_float_to_bf16(a[i]); out[2 * i + 1] = pe_float_to_bf16(b[i]); }
}

/* f32 band: one plane per channel. */
static void fill_task_f32(void *ctx, int64_t c) {
    const fill_job *j = ctx;
    int64_t w2 = j->iw + 2;
    float *plane = (float *)j->band + c * j->bps;
    for (int64_t r = 0; r < j->rows + 2; r++) {
        float *dst = plane + r * w2;
        int64_t iy = j->r0 - 1 + r;
        if (iy < 0 || iy >= j->ih) { memset(dst, 0, (size_t)w2 * 4); continue; }
        dst[0] = dst[w2 - 1] = 0;
        transformed_row(&j->in, c, iy, j->iw, dst + 1);
    }
    memset(plane + (j->rows + 2) * w2, 0, (size_t)(j->bps - (j->rows + 2) * w2) * 4);
}

static void fill_task(void *ctx, int64_t cp) {
    const fill_job *j = ctx;
    int64_t w2 = j->iw + 2;
    uint16_t *plane = (uint16_t *)j->band + cp * j->bps * 2;
    float *rows = must(pe_scratch_acquire((size_t)j->iw * 8));
    for (int64_t r = 0; r < j->rows + 2; r++) {
        uint16_t *dst = plane + r * w2 * 2;
        int64_t iy = j->r0 - 1 + r;
        if (iy < 0 || iy >= j->ih) { memset(dst, 0, (size_t)w2 * 4); continue; }
        transformed_row(&j->in, 2 * cp, iy, j->iw, rows);
        transformed_row(&j->in, 2 * cp + 1, iy, j->iw, rows + j->iw);
        dst[0] = dst[1] = dst[2 * w2 - 2] = dst[2 * w2 - 1] = 0;
        interleave_bf16(rows, rows + j->iw, j->iw, dst + 2);
    }
    memset(plane + (j->rows + 2) * w2 * 2, 0, (size_t)(j->bps - (j->rows + 2) * w2) * 4);
    pe_scratch_release(rows);
}

int pe_conv3x3_fill(pe_conv_input in, int64_t r0, int64_t rows, void *band, int64_t bps, int f32) {
    int64_t ih = in.upsample2x ? 2 * in.h : in.h, iw = in.upsample2x ? 2 * in.w : in.w;
    if (!in.x || !band || in.cin <= 0 || (!f32 && in.cin % 2) || in.h <= 0 || in.w <= 0 || rows <= 0 || r0 < 0 ||
        r0 + rows > ih || bps < pe_conv3x3_band_stride(rows, iw))
        return -1;
    fill_job j = {in, r0, rows, bps, ih, iw, band, f32};
    if (f32) pe_pool_run(fill_task_f32, &j, in.cin);
    else pe_pool_run(fill_task, &j, in.cin / 2);
    return 0;
}

/* ---- convolution ---- */

static int bad(const pe_conv3x3_args *a) {
    return !a->xb || !a->wk || !a->y || a->cin <= 0 || (!a->f32 && a->cin % 2) || a->cout <= 0 || a->rows <= 0 || a->w <= 0 ||
           a->bps < pe_conv3x3_band_stride(a->rows, a->w) || a->ycs < a->rows * a->w;
}

static inline int64_t virtual_count(const pe_conv3x3_args *a) { return a->rows * (a->w + 2) - 2; }

/* Where output v goes in y's channel plane, or −1 for an unused virtual column. */
static inline int64_t dest(const pe_conv3x3_args *a, int64_t v) {
    int64_t w2 = a->w + 2, r = v / w2, c = v % w2;
    return v < virtual_count(a) && c < a->w ? r * a->w + c : -1;
}

static inline float band_value(const pe_conv3x3_args *a, int64_t pixel, int64_t ci) {
    if (a->f32) return ((const float *)a->xb)[ci * a->bps + pixel];
    return pe_bf16_to_float(((const uint16_t *)a->xb)[((ci / 2) * a->bps + pixel) * 2 + ci % 2]);
}

/* Weight of output o, tap s, channel ci (depth order [cout][9][cin]). */
static inline float weight_value(const pe_conv3x3_args *a, int64_t o, int64_t s, int64_t ci) {
    int64_t i = (o * 9 + s) * a->cin + ci;
    return a->f32 ? ((const float *)a->wk)[i] : pe_bf16_to_float(((const uint16_t *)a->wk)[i]);
}

int pe_conv3x3_ref(pe_conv3x3_args a) {
    if (bad(&a)) return -1;
    int64_t V = virtual_count(&a), w2 = a.w + 2;
    for (int64_t o = 0; o < a.cout; o++)
        for (int64_t v = 0; v < V; v++) {
            int64_t d = dest(&a, v);
            if (d < 0) continue;
            double acc = 0;
            for (int64_t s = 0; s < 9; s++)
                for (int64_t ci = 0; ci < a.cin; ci++)
                    acc += (double)band_value(&a, v + (s / 3) * w2 + s % 3, ci) * weight_value(&a, o, s, ci);
            float *y = a.y + o * a.ycs + d;
            float val = (float)acc + (a.bias ? a.bias[o] : 0.0f);
            *y = a.accumulate ? *y + val : val;
        }
    return PE_ISA_REF;
}

#if defined(__x86_64__)
typedef struct {
    pe_conv3x3_args a;
    int64_t V;
} conv_job;

/* Runs of a panel's 32 outputs that are consecutive in the output plane: lanes [c0, c1) go to
 * plane offsets base + c0 … base + c1 − 1. */
typedef struct { int n; int c0[CONV_NR], c1[CONV_NR]; int64_t base[CONV_NR]; } runs;

static void panel_runs(const pe_conv3x3_args *a, int64_t v0, runs *r) {
    r->n = 0;
    for (int c = 0; c < CONV_NR;) {
        int64_t d = dest(a, v0 + c);
        if (d < 0) { c++; continue; }
        int e = c + 1;
        while (e < CONV_NR && dest(a, v0 + e) == d + (e - c)) e++;
        r->c0[r->n] = c; r->c1[r->n] = e; r->base[r->n] = d - c; r->n++;
        c = e;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
static void store_tile(const pe_conv3x3_args *a, const runs *rs, int64_t o0, int mr, __m512 acc[CONV_MR][2]);

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
static void conv_tile(const conv_job *j, int64_t v0, const runs *rs, int64_t o0, int mr) {
    const pe_conv3x3_args *a = &j->a;
    int64_t K = 9 * a->cin, half = a->cin / 2, w2 = a->w + 2;
    const uint16_t *wr[CONV_MR];
    for (int r = 0; r < CONV_MR; r++) wr[r] = (const uint16_t *)a->wk + (o0 + (r < mr ? r : mr - 1)) * K;
    __m512 acc[CONV_MR][2];
    for (int r = 0; r < CONV_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int s = 0; s < 9; s++) {
        const uint16_t *px = (const uint16_t *)a->xb + (v0 + (s / 3) * w2 + s % 3) * 2;
        int64_t k = (int64_t)s * a->cin;
        for (int64_t cp = 0; cp < half; cp++, k += 2, px += a->bps * 2) {
            __m512i x0 = _mm512_loadu_si512(px), x1 = _mm512_loadu_si512(px + 32);
            for (int r = 0; r < CONV_MR; r++) {
                int32_t v;
                memcpy(&v, wr[r] + k, 4);
                __m512i bw = _mm512_set1_epi32(v);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)x0, (__m512bh)bw);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)x1, (__m512bh)bw);
            }
        }
    }
    store_tile(a, rs, o0, mr, acc);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
static void conv_tile_f32(const conv_job *j, int64_t v0, const runs *rs, int64_t o0, int mr) {
    const pe_conv3x3_args *a = &j->a;
    int64_t K = 9 * a->cin, w2 = a->w + 2;
    const float *wr[CONV_MR];
    for (int r = 0; r < CONV_MR; r++) wr[r] = (const float *)a->wk + (o0 + (r < mr ? r : mr - 1)) * K;
    __m512 acc[CONV_MR][2];
    for (int r = 0; r < CONV_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int s = 0; s < 9; s++) {
        const float *px = (const float *)a->xb + v0 + (s / 3) * w2 + s % 3;
        int64_t k = (int64_t)s * a->cin;
        for (int64_t ci = 0; ci < a->cin; ci++, k++, px += a->bps) {
            __m512 x0 = _mm512_loadu_ps(px), x1 = _mm512_loadu_ps(px + 16);
            for (int r = 0; r < CONV_MR; r++) {
                __m512 bw = _mm512_set1_ps(wr[r][k]);
                acc[r][0] = _mm512_fmadd_ps(x0, bw, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x1, bw, acc[r][1]);
            }
        }
    }
    store_tile(a, rs, o0, mr, acc);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
static void store_tile(const pe_conv3x3_args *a, const runs *rs, int64_t o0, int mr, __m512 acc[CONV_MR][2]) {
    for (int r = 0; r < mr; r++) {
        float *y = a->y + (o0 + r) * a->ycs;
        __m512 b = _mm512_set1_ps(a->bias ? a->bias[o0 + r] : 0.0f);
        __m512 v[2] = {_mm512_add_ps(acc[r][0], b), _mm512_add_ps(acc[r][1], b)};
        for (int q = 0; q < rs->n; q++) {
            uint32_t m = (rs->c1[q] == 32 ? 0xffffffffu : (1u << rs->c1[q]) - 1) & ~((1u << rs->c0[q]) - 1);
            for (int h = 0; h < 2; h++) {
                __mmask16 mh = (__mmask16)(m >> (16 * h));
                if (!mh) continue;
                float *p = y + rs->base[q] + 16 * h;
                __m512 t = a->accumulate ? _mm512_add_ps(v[h], _mm512_maskz_loadu_ps(mh, p)) : v[h];
                _mm512_mask_storeu_ps(p, mh, t);
            }
        }
    }
}

static void conv_task(void *ctx, int64_t task) {
    const conv_job *j = ctx;
    int64_t v0 = task * CONV_PANELS * CONV_NR;
    int np = (int)((j->V - v0 + CONV_NR - 1) / CONV_NR);
    if (np > CONV_PANELS) np = CONV_PANELS;
    runs rs[CONV_PANELS];
    for (int p = 0; p < np; p++) panel_runs(&j->a, v0 + p * CONV_NR, &rs[p]);
    for (int64_t o0 = 0; o0 < j->a.cout; o0 += CONV_MR) {
        int mr = j->a.cout - o0 < CONV_MR ? (int)(j->a.cout - o0) : CONV_MR;
        for (int p = 0; p < np; p++) {
            if (j->a.f32) conv_tile_f32(j, v0 + p * CONV_NR, &rs[p], o0, mr);
            else conv_tile(j, v0 + p * CONV_NR, &rs[p], o0, mr);
        }
    }
}
#endif

int pe_conv3x3_isa(int f32) {
    return pe_isa_supported(f32 ? PE_ISA_F32_512 : PE_ISA_BF16_512) ? (f32 ? PE_ISA_F32_512 : PE_ISA_BF16_512) : -1;
}

int pe_conv3x3(pe_conv3x3_args a) {
    int isa = pe_conv3x3_isa(a.f32);
    if (bad(&a) || isa < 0) return -1;
#if defined(__x86_64__)
    conv_job j = {a, virtual_count(&a)};
    pe_pool_run(conv_task, &j, (j.V + CONV_PANELS * CONV_NR - 1) / (CONV_PANELS * CONV_NR));
    return isa;
#else
    return -1;
#endif
}

int pe_conv3x3_image(pe_conv_input in, const void *wk, int f32, int64_t cout, const float *bias, float *y,
                     int accumulate, int64_t band_rows) {
    int64_t ih = in.upsample2x ? 2 * in.h : in.h, iw = in.upsample2x ? 2 * in.w : in.w;
    if (!in.x || !wk || !y || in.cin <= 0 || (!f32 && in.cin % 2) || in.h <= 0 || in.w <= 0 || cout <= 0) return -1;
    if (pe_conv3x3_isa(f32) < 0) return -1;
    if (band_rows <= 0) { /* a band of about 32 MiB */
        band_rows = ((int64_t)32 << 20) / (in.cin * (iw + 2) * (f32 ? 4 : 2)) - 2;
        if (band_rows < 1) band_rows = 1;
    }
    if (band_rows > ih) band_rows = ih;
    int64_t bps = pe_conv3x3_band_stride(band_rows, iw);
    /* one size for every layer's band, so the scratch list keeps a single block for them */
    size_t bytes = (size_t)in.cin * bps * (f32 ? 4 : 2), common = ((size_t)33 << 20);
    void *band = must(pe_scratch_acquire(bytes > common ? bytes : common));
    int isa = -1;
    for (int64_t r0 = 0; r0 < ih; r0 += band_rows) {
        int64_t rows = ih - r0 < band_rows ? ih - r0 : band_rows;
        pe_conv3x3_fill(in, r0, rows, band, bps, f32);
        pe_conv3x3_args a = {band, bps, in.cin, rows, iw, wk, f32, cout, bias, y + r0 * iw, ih * iw, accumulate};
        isa = pe_conv3x3(a);
        if (isa < 0) break;
    }
    pe_scratch_release(band);
    return isa;
}
