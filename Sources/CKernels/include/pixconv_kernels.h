#ifndef PIXCONV_KERNELS_H
#define PIXCONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Conversion kernels for pixconv, bit-exact with the Swift references in Sources/PixconvQuant
   (HalfPrecision.f16Bits, HalfPrecision.decodeF16, Q8_0Codec.encode, Q4_0Codec.encode). Inputs are little-endian
   f32 / f16 bytes at any alignment. Each kernel picks an AVX2 + F16C path at run time when the CPU
   has it; the `_portable` variants are plain C and are what other CPUs run. */

/* 1 when the CPU (and OS) support AVX2 and F16C, so the fast paths are used. */
int pixconv_kernels_accelerated(void);

/* f32 -> IEEE binary16, round to nearest even; NaN -> sign | 0x7E00 | top 10 payload bits.
   Returns how many finite inputs have |x| >= 65520 (they become inf). */
size_t pixconv_f32_to_f16(const void *src, void *dst, size_t count);
size_t pixconv_f32_to_f16_portable(const void *src, void *dst, size_t count);

/* IEEE binary16 -> f32, exact; NaN payloads kept as they are (no quiet bit added). */
void pixconv_f16_to_f32(const void *src, float *dst, size_t count);
void pixconv_f16_to_f32_portable(const void *src, float *dst, size_t count);

/* `blocks` ggml Q8_0 blocks (32 f32 in, 34 bytes out) as gguf-py 0.19.0 Q8_0.quantize_blocks.
   Returns how many blocks got a non-finite f16 scale (an inf/NaN in the block, or |max| too large). */
size_t pixconv_q8_0_encode(const void *src, void *dst, size_t blocks);
size_t pixconv_q8_0_encode_portable(const void *src, void *dst, size_t blocks);

/* `blocks` ggml Q4_0 blocks (32 f32 in, 18 bytes out) as gguf-py 0.19.0 Q4_0.quantize_blocks.
   Returns how many blocks got a non-finite f16 scale. */
size_t pixconv_q4_0_encode(const void *src, void *dst, size_t blocks);
size_t pixconv_q4_0_encode_portable(const void *src, void *dst, size_t blocks);

#endif
