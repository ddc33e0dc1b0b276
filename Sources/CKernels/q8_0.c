/* ggml Q8_0 encoder. Reference: Sources/PixconvQuant/Q8_0.swift (Q8_0Codec.encode), itself
   bit-exact with gguf-py 0.19.0 Q8_0.quantize_blocks: d = amax / 127 (f32 division), id = 1/d
   (0 when d = 0), q = round-half-away-from-zero(x * id), d stored as f16 (RNE). A NaN in the block
   gives d = NaN (f16 0x7E00) and q = 0; a non-finite id or an infinite amax gives q = 0. */
#include "pixconv_kernels.h"
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

static inline int8_t round_half_away(float v) {
    if (!isfinite(v)) return 0;
    int32_t t = (int32_t)v;            /* |v| <= 127 (+ rounding) here */
    float rest = v - (float)t;         /* exact */
    int32_t q = t + (rest >= 0.5f ? 1 : 0) - (rest <= -0.5f ? 1 : 0);
    return (int8_t)q;
}

/* Scale of one block: writes d's f16 bits, returns id (NaN when the block holds a NaN). */
static inline float block_scale(float amax, int saw_nan, unsigned char *o, size_t *bad) {
    uint16_t h;
    float id;
    if (saw_nan) {
        h = 0x7E00u;
        id = NAN;
    } else {
        float d = amax / 127.0f;
        id = d == 0.0f ? 0.0f : 1.0f / d;
        uint32_t db;
        memcpy(&db, &d, 4);
        h = pixconv_f16_bits(db);
    }
    *bad += (h & 0x7C00u) == 0x7C00u;
    memcpy(o, &h, 2);
    return id;
}

size_t pixconv_q8_0_encode_portable(const void *src, void *dst, size_t blocks) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    size_t bad = 0;
    for (size_t b = 0; b < blocks; b++) {
        float x[32];
        memcpy(x, s + b * 128, 128);
        unsigned char *o = out + b * 34;
        float amax = 0.0f;
        int saw_nan = 0;
        for (int j = 0; j < 32; j++) {
            float v = fabsf(x[j]);
            amax = v > amax ? v : amax;
            saw_nan |= isnan(v);
        }
        float id = block_scale(amax, saw_nan, o, &bad);
        if (isfinite(id)) {
            for (int j = 0; j < 32; j++) o[2 + j] = (unsigned char)round_half_away(x[j] * id);
        } else {
            memset(o + 2, 0, 32);
        }
    }
    return bad;
}

#if PIXCONV_X86
#include <immintrin.h>

/* Round half away from zero of 8 finite lanes, as gguf-py's np_roundf: floor(a) + floor(2(a - floor(a))),
   a = |v|, sign put back (all steps exact for |v| < 2^22). */
__attribute__((target("avx2")))
static inline __m256i round_lanes(__m256 v, __m256 sign) {
    __m256 a = _mm256_andnot_ps(sign, v);
    __m256 f = _mm256_floor_ps(a);
    __m256 frac2 = _mm256_mul_ps(_mm256_sub_ps(a, f), _mm256_set1_ps(2.0f));
    __m256 r = _mm256_add_ps(f, _mm256_floor_ps(frac2));
    return _mm256_cvttps_epi32(_mm256_or_ps(r, _mm256_and_ps(sign, v)));
}

__attribute__((target("avx2")))
static size_t q8_0_encode_avx2(const void *src, void *dst, size_t blocks) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t bad = 0;
    for (size_t b = 0; b < blocks; b++) {
        const float *x = (const float *)(s + b * 128);
        unsigned char *o = out + b * 34;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 nan = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)),
                                  _mm256_or_ps(_mm256_cmp_ps(v2, v2, _CMP_UNORD_Q), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
        int saw_nan = _mm256_movemask_ps(nan) != 0;
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float id = block_scale(amax, saw_nan, o, &bad);
        if (!isfinite(id) || !isfinite(amax)) {  /* inf·0 = NaN lanes would not cast to 0 */
            memset(o + 2, 0, 32);
            continue;
        }
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = round_lanes(_mm256_mul_ps(v0, vid), sign);
        __m256i i1 = round_lanes(_mm256_mul_ps(v1, vid), sign);
        __m256i i2 = round_lanes(_mm256_mul_ps(v2, vid), sign);
        __m256i i3 = round_lanes(_mm256_mul_ps(v3, vid), sign);
        /* Packs work within 128-bit lanes; the permute puts the 32 bytes back in order. */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(o + 2), _mm256_permutevar8x32_epi32(p, perm));
    }
    return bad;
}
#endif

size_t pixconv_q8_0_encode(const void *src, void *dst, size_t blocks) {
#if PIXCONV_X86
    if (pixconv_kernels_accelerated()) return q8_0_encode_avx2(src, dst, blocks);
#endif
    return pixconv_q8_0_encode_portable(src, dst, blocks);
}
