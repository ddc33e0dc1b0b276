/* pixconv's compute engine in C: one thread pool, the linear operation on stored weight types
 * (f32, f16, bf16, Q8_0, Q4_0), fused attention, and the fused elementwise passes of the models.
 *
 * Every fast kernel has a plain reference beside it (the *_ref functions and PE_ISA_REF), chosen
 * with the same entry points, so tests compare the two on awkward shapes.
 * Layouts are row-major; "ld" is the distance in elements between rows. */
#ifndef PIXCONV_ENGINE_H
#define PIXCONV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CPU features (cpuid + xgetbv) ---- */
enum {
    PE_CPU_AVX2 = 1 << 0,       /* AVX2 + FMA + F16C, OS saves YMM */
    PE_CPU_AVX512 = 1 << 1,     /* AVX-512 F/BW/VL/DQ, OS saves ZMM */
    PE_CPU_AVX512VNNI = 1 << 2, /* vpdpbusd on zmm */
    PE_CPU_AVX512BF16 = 1 << 3, /* vdpbf16ps, vcvtne2ps2bf16 */
    PE_CPU_AVXVNNI = 1 << 4,    /* VEX vpdpbusd on ymm */
};
int pe_cpu_features(void);

/* Instruction-set level of a kernel. PE_ISA_AUTO picks the best one the CPU has. */
typedef enum {
    PE_ISA_AUTO = 0,
    PE_ISA_REF = 1,       /* portable C loops, the reference */
    PE_ISA_AVX2 = 2,      /* int8 × int8: maddubs with the sign trick, 256-bit */
    PE_ISA_VNNI512 = 4,   /* int8 × int8: vpdpbusd on zmm */
    PE_ISA_BF16_512 = 5,  /* bf16 × bf16 → f32: vdpbf16ps on zmm */
    PE_ISA_SGEMM = 6,     /* f32: weights widened panel by panel (or used in place) into OpenBLAS sgemm */
    PE_ISA_F32_512 = 7,   /* f32 × f32: FMA on zmm (the 3×3 convolution) */
    PE_ISA_DNNL_F32 = 8,  /* f32 × f32: oneDNN's convolution (the 3×3 convolution) */
} pe_isa;
/* Products per second of vdpbf16ps over FMA on zmm, measured once per process (0 without
 * AVX512_BF16): about 2 where both issue at one rate (AMD Zen 4), 0.47 on an Intel Xeon (family 6
 * model 207) whose FMA issues four times as often. pe_bf16_pays: gain ≥ 1.5, the condition
 * under which the default arithmetic uses bf16 products (bf16 stores' linear layers, the DiT's
 * attention for int8 and bf16 stores, the engine's own VAE tiles). */
double pe_bf16_gain(void);
int pe_bf16_pays(void);
/* 1 when the machine can run kernels of this level. */
int pe_isa_supported(pe_isa isa);
const char *pe_isa_name(pe_isa isa);

/* ---- Thread pool ----
 * One pool for the whole process; OpenBLAS runs single-threaded inside its tasks, so no two
 * pools spin against each other. pe_pool_run(fn, ctx, n) calls fn(ctx, i) for i in [0, n)
 * on the workers and the caller and returns when all have finished. A call made from inside a
 * task runs its parts serially on that thread. */
void pe_set_threads(int threads); /* ≤ 0: every core */
int pe_threads(void);
typedef void (*pe_task_fn)(void *ctx, int64_t part);
void pe_pool_run(pe_task_fn fn, void *ctx, int64_t parts);
/* Frees the engine's idle scratch buffers (kept for reuse between calls), e.g. between stages. */
void pe_scratch_trim(void);

/* ---- f32 matrix product: C[m, n] = alpha · op(A) · op(B) + beta · C, row-major ----
 * oneDNN's dnnl_sgemm (kernels from cpuid), or OpenBLAS's cblas_sgemm where oneDNN refuses the
 * call; single-threaded (call it from pool tasks to use every core). pe_omp_single sets oneDNN's
 * OpenMP team of the calling thread to one thread (done by every engine entry that runs oneDNN). */
void pe_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void pe_omp_single(void);

/* ---- Linear: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) (+ y if accumulate) ----
 * W is the stored tensor, row n at its n-th row of K elements in its own type (GGUF order:
 * Q8_0 rows are K/32 blocks of {f16 d, int8 q[32]}; Q4_0 blocks are {f16 d, uint8 qs[16]} with
 * element j in the low nibble of qs[j] and j+16 in its high nibble, value (nibble − 8)·d).
 * Quantized and bf16 weights multiply activations in the same kind of arithmetic: x is rounded
 * to int8 blocks of 32 (one scale each) or to bf16 once per call. compute_f32 = 1 widens the
 * weights to f32 instead and multiplies in f32 (exact to rounding). Returns the ISA that ran,
 * or −1 on bad arguments (K not a multiple of 32 for a block type, unknown type, ISA not available). */
typedef enum { PE_W_F32 = 0, PE_W_F16 = 1, PE_W_BF16 = 2, PE_W_Q8_0 = 8, PE_W_Q4_0 = 9 } pe_wtype;
typedef struct {
    int accumulate;   /* y += result instead of y = result */
    int compute_f32;  /* widen weights to f32, multiply in f32 */
    pe_isa isa;       /* PE_ISA_AUTO, or force a level (tests) */
} pe_linear_opts;
int pe_linear(const float *x, int64_t ldx, int64_t M, int64_t K,
              const void *w, pe_wtype wtype, int64_t N, const float *bias,
              float *y, int64_t ldy, pe_linear_opts opts);
/* Several weights (of one stored type) applied to the same x: the activations are rounded once
 * and the panels of all outputs share one pool job (self-attention's q, k and v). */
#define PE_LINEAR_MAX_OUTS 8
typedef struct {
    const void *w;
    pe_wtype wtype;
    int64_t N;
    const float *bias;
    float *y;
    int64_t ldy;
} pe_linear_out;
int pe_linear_many(const float *x, int64_t ldx, int64_t M, int64_t K, const pe_linear_out *outs, int count,
                   pe_linear_opts opts);
/* The ISA pe_linear would choose for this weight type and options. */
pe_isa pe_linear_isa(pe_wtype wtype, pe_linear_opts opts);
/* The plain reference, single-threaded loops straight on the stored rows, in the arithmetic that
 * pe_linear runs with the same options: int8 blocks (bit-identical: the same integer sums and
 * the same float operations in the same order), bf16-rounded activations with float
 * accumulation, or f32 with double accumulation. */
int pe_linear_ref(const float *x, int64_t ldx, int64_t M, int64_t K,
                  const void *w, pe_wtype wtype, int64_t N, const float *bias,
                  float *y, int64_t ldy, pe_linear_opts opts);

/* Activation rounding to int8 blocks of 32: d = max|x| / 127, q = round-half-even(x / d). */
void pe_quantize_row_q8(const float *x, int64_t K, int8_t *q, float *d);
/* The same in plain loops (pe_quantize_row_q8 runs an AVX-512 version where it can; tests
 * require the two to agree byte for byte). */
void pe_quantize_row_q8_ref(const float *x, int64_t K, int8_t *q, float *d);

/* ---- Attention ----
 * o = softmax(scale · q·kᵀ + key_bias + bias)·v per batch and head, online softmax over key
 * blocks (the score matrix is never whole). Element (b, i, h, c) of q is at
 * q[b·q_bstride + i·ldq + h·d + c]; likewise k, v (nk rows) and o (nq rows).
 * key_bias: NULL or (batch, nk), added to every query row and head;
 * bias: NULL or (heads, nq, nk), the same for every batch element.
 * Paths: bf16 dot products (a.bf16, AVX512_BF16, d ≤ 128), f32 AVX-512 micro-kernels (d ≤ 128),
 * otherwise sgemm on the blocks. */
typedef struct {
    int64_t batch, heads, nq, nk, d;
    int64_t ldq, ldk, ldv, ldo;
    int64_t q_bstride, k_bstride, v_bstride, o_bstride;
    float scale;
    const float *key_bias;
    const float *bias;
    int bf16;  /* 1: q, k, p, v rounded to bf16, products summed in f32 (where AVX512_BF16 exists) */
} pe_attention_args;
/* 1 when pe_attention would run its bf16 path for these arguments. */
int pe_attention_bf16(pe_attention_args a);
void pe_attention(const float *q, const float *k, const float *v, float *o, pe_attention_args a);
/* Plain loops, double accumulation, the whole score row at once (the reference). */
void pe_attention_ref(const float *q, const float *k, const float *v, float *o, pe_attention_args a);

/* ---- 3×3 convolution (stride 1, padding 1): bf16 products summed in f32, or f32 ----
 * The input is a band of rows + 2 input rows of w + 2 pixels, zero-padded. bf16 (f32 = 0): the
 * channels in interleaved pairs, channel ci of band pixel i (row j, column k: i = j·(w + 2) + k)
 * at ((uint16_t *)xb)[((ci / 2)·bps + i)·2 + ci % 2]; f32: ((float *)xb)[ci·bps + i].
 * bps ≥ pe_conv3x3_band_stride(rows, w). wk: weights (bf16, or f32 when f32) in depth order
 * [cout][ky][kx][cin]; y: output channel o, row r, column c at y[o·ycs + r·w + c],
 * overwritten with conv + bias, or added to when accumulate. bf16 needs an even cin. */
typedef struct {
    const void *xb;
    int64_t bps, cin, rows, w;
    const void *wk;
    int f32;
    int64_t cout;
    const float *bias;
    float *y;
    int64_t ycs;
    int accumulate;
} pe_conv3x3_args;
/* Pixels per channel plane (pair-plane for bf16) of a band for `rows` output rows of width w. */
int64_t pe_conv3x3_band_stride(int64_t rows, int64_t w);
/* The stored input of a convolution and the operation before it: x[cin][h][w], then nearest ×2
 * upsampling (upsample2x), then v·scale[c] + shift[c] (scale non-NULL), then SiLU (silu). */
typedef struct {
    const float *x;
    int64_t cin, h, w;
    int upsample2x;
    const float *scale, *shift;
    int silu;
} pe_conv_input;
/* Writes the band for output rows r0 … r0 + rows − 1 (input coordinates after upsampling):
 * input rows r0 − 1 … r0 + rows through the transform (rounded to bf16 unless f32), zero
 * outside the image. 0, or −1 for bad arguments. */
int pe_conv3x3_fill(pe_conv_input in, int64_t r0, int64_t rows, void *xb, int64_t bps, int f32);
/* The ISA pe_conv3x3 runs (PE_ISA_BF16_512 or PE_ISA_F32_512), or −1 when the CPU lacks it. */
int pe_conv3x3_isa(int f32);
/* The convolution of one band: its ISA, or −1 when unsupported or the arguments are bad. */
int pe_conv3x3(pe_conv3x3_args a);
/* Plain loops on the same band and weights, double accumulation (the reference). */
int pe_conv3x3_ref(pe_conv3x3_args a);
/* The whole convolution of `in` (output [cout][ih][iw], the size after any upsampling) band by
 * band of band_rows output rows (≤ 0: bands of about 32 MiB), in reused scratch. */
int pe_conv3x3_image(pe_conv_input in, const void *wk, int f32, int64_t cout, const float *bias, float *y,
                     int accumulate, int64_t band_rows);

/* ---- 3×3 convolution (stride 1, padding 1) through oneDNN's f32 convolution ----
 * pe_dnnl_available: 1 when oneDNN's CPU engine could be created. pe_dnnl_conv3x3_create keeps
 * the weights w[cout][cin][3][3] (PyTorch layout, f32) in oneDNN's blocked layout: NULL when
 * oneDNN is unavailable or refuses the shape. pe_dnnl_conv3x3_image: the whole convolution of
 * `in`, as pe_conv3x3_image computes it (f32 arithmetic), band by band of band_rows output rows
 * (≤ 0: chosen), one band per task of the engine's pool; PE_ISA_DNNL_F32, or −1 on failure. */
typedef struct pe_dnnl_conv pe_dnnl_conv;
int pe_dnnl_available(void);
pe_dnnl_conv *pe_dnnl_conv3x3_create(const float *w_oihw, int64_t cin, int64_t cout);
void pe_dnnl_conv3x3_destroy(pe_dnnl_conv *c);
int pe_dnnl_conv3x3_image(const pe_dnnl_conv *c, pe_conv_input in, const float *bias, float *y, int accumulate,
                          int64_t band_rows);

/* ---- Elementwise passes (parallel over rows) ---- */
/* Mean and biased variance of x[0 … n) in double (two passes; single-threaded). */
void pe_mean_var(const float *x, int64_t n, double *mean, double *var);
/* y = LayerNorm(x) (no affine) · (1 + scale) + shift, per row; scale/shift (dim) per batch
 * element: row r uses scale[(r / rows_per_batch) · mod_stride]. */
void pe_layernorm_modulate(const float *x, float *y, int64_t rows, int64_t dim, float eps,
                           const float *shift, const float *scale, int64_t rows_per_batch, int64_t mod_stride);
/* y = x · rsqrt(mean(x²) + eps) · w (T5 RMSNorm). */
void pe_rmsnorm(const float *x, float *y, int64_t rows, int64_t dim, float eps, const float *w);
/* x += gate ⊙ y per row, gate per batch element as above (gate NULL: plain add). */
void pe_gated_add(float *x, const float *y, int64_t rows, int64_t dim, const float *gate,
                  int64_t rows_per_batch, int64_t gate_stride);
/* In place over n elements. */
void pe_gelu_tanh(float *x, int64_t n);
void pe_silu(float *x, int64_t n);
/* x = gelu_tanh(x) ⊙ y (T5's gated feed-forward). */
void pe_gelu_tanh_mul(float *x, const float *y, int64_t n);
/* softmax of each row of x (rows, dim), in place. */
void pe_softmax_rows(float *x, int64_t rows, int64_t dim);
/* The engine's exp (max rel. error ≈ 2e-7 for |x| < 88; 0 below −87.3). */
float pe_expf(float x);

#ifdef __cplusplus
}
#endif
#endif
