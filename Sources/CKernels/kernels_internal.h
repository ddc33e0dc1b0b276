#ifndef PIXCONV_KERNELS_INTERNAL_H
#define PIXCONV_KERNELS_INTERNAL_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define PIXCONV_X86 1
#else
#define PIXCONV_X86 0
#endif

/* f32 bits -> f16 bits, round to nearest even, as HalfPrecision.f16Bits (Swift). */
static inline uint16_t pixconv_f16_bits(uint32_t bits) {
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t a = bits & 0x7FFFFFFFu;
    if (a >= 0x38800000u) {          /* >= 2^-14: normal f16, inf or NaN */
        if (a >= 0x477FF000u) {      /* >= 65520 rounds to inf; NaN quiet, top payload bits kept */
            return a > 0x7F800000u ? (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)) : (uint16_t)(sign | 0x7C00u);
        }
        uint32_t r = (a + 0xFFFu + ((a >> 13) & 1u)) >> 13;
        return (uint16_t)(sign | (uint16_t)(r - (112u << 10)));
    }
    /* Below 2^-14: adding 0.5 leaves the f16 subnormal code in the low mantissa bits (RNE by the FPU). */
    float v, magic = 0.5f;
    memcpy(&v, &a, 4);
    v += magic;
    uint32_t vb, mb;
    memcpy(&vb, &v, 4);
    memcpy(&mb, &magic, 4);
    return (uint16_t)(sign | (uint16_t)(vb - mb));
}

/* f16 bits -> f32, exact, NaN payloads kept (HalfPrecision.decodeF16). */
static inline float pixconv_f16_to_float(uint16_t h) {
    uint32_t magnitude = ((uint32_t)h & 0x7FFFu) << 13;
    uint32_t bits;
    if ((h & 0x7C00u) == 0x7C00u) {
        bits = magnitude | 0x7F800000u;
    } else {
        float f, scale;
        uint32_t sb = 0x77800000u;  /* 2^112 */
        memcpy(&f, &magnitude, 4);
        memcpy(&scale, &sb, 4);
        f *= scale;
        memcpy(&bits, &f, 4);
    }
    bits |= ((uint32_t)h & 0x8000u) << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

#endif
