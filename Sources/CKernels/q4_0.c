/* ggml Q4_0 encoder. Reference: Sources/PixconvQuant/Q4_0.swift (Q4_0Codec.encode), bit-exact
   with gguf-py 0.19.0 Q4_0.quantize_blocks: the element with the largest |x| (first on ties, the
   first NaN if any) keeps its sign as `max`; d = max / -8 (f32); id = d != 0 ? 1/d : 0;
   q = min(15, trunc(x * id + 8.5)), 0 when that is not finite; byte j = q[j] | q[j+16] << 4;
   d stored as f16 (RNE). */
#include "pixconv_kernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

static inline uint8_t q4_code(float v) {
    if (!isfinite(v)) return 0;
    float c = v > 1024.0f ? 1024.0f : (v < -1024.0f ? -1024.0f : v);
    uint8_t t = (uint8_t)(int32_t)c;  /* truncates toward zero, then wraps as UInt8(truncatingIfNeeded:) */
    return t < 15 ? t : 15;
}

/* One block, scalar: returns 1 when d's f16 is inf or NaN. */
static inline int q4_0_block(const float *p, unsigned char *o) {
    float amax = 0.0f, max_value = 0.0f;
    for (int j = 0; j < 32; j++) {
        float v = fabsf(p[j]);
        if (v > amax) { amax = v; max_value = p[j]; }
        if (isnan(v)) { max_value = p[j]; break; }
    }
    float d = max_value / -8.0f;
    float id = d == 0.0f ? 0.0f : 1.0f / d;
    uint32_t db;
    memcpy(&db, &d, 4);
    uint16_t h = pixconv_f16_bits(db);
    memcpy(o, &h, 2);
    for (int j = 0; j < 16; j++) {
        uint8_t lo = q4_code(p[j] * id + 8.5f);
        uint8_t hi = q4_code(p[j + 16] * id + 8.5f);
        o[2 + j] = (uint8_t)(lo | (hi << 4));
    }
    return (h & 0x7C00u) == 0x7C00u;
}

size_t pixconv_q4_0_encode_portable(const void *src, void *dst, size_t blocks) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    size_t bad = 0;
    for (size_t b = 0; b < blocks; b++) {
        float x[32];
        memcpy(x, s + b * 128, 128);
        bad += (size_t)q4_0_block(x, out + b * 18);
    }
    return bad;
}

#if PIXCONV_X86
#include <immintrin.h>

__attribute__((target("avx2")))
static inline __m256i q4_lanes(__m256 v, __m256 vid) {
    __m256i t = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v, vid), _mm256_set1_ps(8.5f)));
    return _mm256_min_epi32(t, _mm256_set1_epi32(15));  /* t >= 0 for finite blocks and id */
}

__attribute__((target("avx2")))
static size_t q4_0_encode_avx2(const void *src, void *dst, size_t blocks) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    size_t bad = 0;
    for (size_t b = 0; b < blocks; b++) {
        float x[32];
        memcpy(x, s + b * 128, 128);
        unsigned char *o = out + b * 18;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 a0 = _mm256_andnot_ps(sign, v0), a1 = _mm256_andnot_ps(sign, v1);
        __m256 a2 = _mm256_andnot_ps(sign, v2), a3 = _mm256_andnot_ps(sign, v3);
        __m256 nan = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)),
                                  _mm256_or_ps(_mm256_cmp_ps(v2, v2, _CMP_UNORD_Q), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
        if (_mm256_movemask_ps(nan) != 0) {
            bad += (size_t)q4_0_block(x, o);
            continue;
        }
        __m256 m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        if (!(amax > 0.0f) || !isfinite(amax)) {  /* all zero, or an infinity: the scalar rules */
            bad += (size_t)q4_0_block(x, o);
            continue;
        }
        /* The first element whose |x| is the maximum keeps its sign. */
        __m256 vm = _mm256_set1_ps(amax);
        uint32_t hit = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a0, vm, _CMP_EQ_OQ))
                     | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a1, vm, _CMP_EQ_OQ)) << 8
                     | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a2, vm, _CMP_EQ_OQ)) << 16
                     | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a3, vm, _CMP_EQ_OQ)) << 24;
        float d = x[__builtin_ctz(hit)] / -8.0f;
        float id = 1.0f / d;
        if (!isfinite(id)) {
            bad += (size_t)q4_0_block(x, o);
            continue;
        }
        uint32_t db;
        memcpy(&db, &d, 4);
        uint16_t h = pixconv_f16_bits(db);
        bad += (h & 0x7C00u) == 0x7C00u;
        memcpy(o, &h, 2);
        __m256 vid = _mm256_set1_ps(id);
        /* byte j = q[j] | q[j + 16] << 4, j = 0..15 */
        __m256i c0 = _mm256_or_si256(q4_lanes(v0, vid), _mm256_slli_epi32(q4_lanes(v2, vid), 4));
        __m256i c1 = _mm256_or_si256(q4_lanes(v1, vid), _mm256_slli_epi32(q4_lanes(v3, vid), 4));
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(c0, c1), 0xD8);  /* 16-bit 0..7 | 8..15 */
        __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        _mm_storeu_si128((__m128i *)(o + 2), bytes);
    }
    return bad;
}
#endif

size_t pixconv_q4_0_encode(const void *src, void *dst, size_t blocks) {
#if PIXCONV_X86
    if (pixconv_kernels_accelerated()) return q4_0_encode_avx2(src, dst, blocks);
#endif
    return pixconv_q4_0_encode_portable(src, dst, blocks);
}
