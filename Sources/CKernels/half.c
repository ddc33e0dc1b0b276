/* f32 <-> f16 kernels. Reference: Sources/PixconvQuant/HalfPrecision.swift (f16Bits, decodeF16). */
#include "pixconv_kernels.h"
#include "kernels_internal.h"
#include <string.h>

size_t pixconv_f32_to_f16_portable(const void *src, void *dst, size_t count) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    size_t overflow = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, s + 4 * i, 4);
        uint32_t a = bits & 0x7FFFFFFFu;
        overflow += (a >= 0x477FF000u && a < 0x7F800000u);
        uint16_t h = pixconv_f16_bits(bits);
        memcpy(d + 2 * i, &h, 2);
    }
    return overflow;
}

void pixconv_f16_to_f32_portable(const void *src, float *dst, size_t count) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < count; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = pixconv_f16_to_float(h);
    }
}

#if PIXCONV_X86
#include <immintrin.h>

__attribute__((target("avx2,f16c")))
static size_t f32_to_f16_avx2(const void *src, void *dst, size_t count) {
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i below = _mm256_set1_epi32(0x477FF000 - 1);  /* a > this: |x| >= 65520 */
    const __m256i inf = _mm256_set1_epi32(0x7F800000);         /* a < this: finite */
    __m256i counts = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps((const float *)(s + 4 * i));
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(d + 2 * i), h);
        __m256i a = _mm256_and_si256(_mm256_castps_si256(v), abs_mask);
        __m256i big = _mm256_and_si256(_mm256_cmpgt_epi32(a, below), _mm256_cmpgt_epi32(inf, a));
        counts = _mm256_sub_epi32(counts, big);  /* lanes are -1 where set */
    }
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, counts);
    size_t overflow = 0;
    for (int k = 0; k < 8; k++) overflow += lanes[k];
    return overflow + pixconv_f32_to_f16_portable(s + 4 * i, d + 2 * i, count - i);
}

__attribute__((target("avx2,f16c")))
static void f16_to_f32_avx2(const void *src, float *dst, size_t count) {
    const unsigned char *s = (const unsigned char *)src;
    const __m128i exp_mask = _mm_set1_epi16(0x7C00);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        /* inf/NaN lanes go through the scalar path, which keeps NaN payloads unquieted. */
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask)) != 0) {
            pixconv_f16_to_f32_portable(s + 2 * i, dst + i, 8);
            continue;
        }
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    pixconv_f16_to_f32_portable(s + 2 * i, dst + i, count - i);
}
#endif

size_t pixconv_f32_to_f16(const void *src, void *dst, size_t count) {
#if PIXCONV_X86
    if (pixconv_kernels_accelerated()) return f32_to_f16_avx2(src, dst, count);
#endif
    return pixconv_f32_to_f16_portable(src, dst, count);
}

void pixconv_f16_to_f32(const void *src, float *dst, size_t count) {
#if PIXCONV_X86
    if (pixconv_kernels_accelerated()) {
        f16_to_f32_avx2(src, dst, count);
        return;
    }
#endif
    pixconv_f16_to_f32_portable(src, dst, count);
}
