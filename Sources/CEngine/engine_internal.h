/* Shared helpers of the engine's C files. */
#ifndef PIXCONV_ENGINE_INTERNAL_H
#define PIXCONV_ENGINE_INTERNAL_H
#include "pixconv_engine.h"
#include <string.h>
#include <math.h>

/* Loops compiled for AVX-512, AVX2 and the baseline, chosen at load time (ifunc). Not under
 * ThreadSanitizer, whose instrumented ifunc resolvers crash before its runtime is up: there the
 * baseline version alone is built. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PE_NO_CLONES 1
#endif
#endif
#if defined(__x86_64__) && defined(__clang__) && !defined(PE_NO_CLONES)
#define PE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PE_CLONES
#endif

/* Reusable scratch buffers (grow-only, a few kept): no allocation per call in the hot path. */
void *pe_scratch_acquire(size_t bytes);
void pe_scratch_release(void *p);

static inline float pe_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float pe_bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest even; NaN stays NaN (quiet). */
static inline uint16_t pe_float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* exp by Cody–Waite reduction and a degree-6 polynomial (Cephes' expf coefficients). */
static inline float pe_exp_approx(float x) {
    float c = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    float n = nearbyintf(c * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, c);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    float y = fmaf(p * r, r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return x < -87.3f ? 0.0f : y * s;
}

/* Bytes of one stored weight row of K elements; 0 when K does not fit the type. */
static inline size_t pe_row_bytes(pe_wtype t, int64_t K) {
    switch (t) {
    case PE_W_F32: return (size_t)K * 4;
    case PE_W_F16: case PE_W_BF16: return (size_t)K * 2;
    case PE_W_Q8_0: return K % 32 ? 0 : (size_t)(K / 32) * 34;
    case PE_W_Q4_0: return K % 32 ? 0 : (size_t)(K / 32) * 18;
    }
    return 0;
}

/* One stored weight row → f32 (plain C). */
void pe_widen_row(pe_wtype t, const void *row, int64_t K, float *out);
/* One stored Q8_0 / Q4_0 row → int8 values and f32 block scales. */
void pe_row_to_int8(pe_wtype t, const void *row, int64_t K, int8_t *q, float *d);

/* Row helpers of elementwise.c: x = exp(x − m) with the sum; max; x ·= s. */
void pe_exp_rows_sub(float *x, int64_t n, float m, float *sum);
float pe_row_max(const float *x, int64_t n);
void pe_scale_row(float *x, int64_t n, float s);

#endif
