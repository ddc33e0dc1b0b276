/* The VAE decoder's 3×3 convolutions, pixconv's engine (pe_conv3x3_image) against oneDNN, one
 * layer at a time, in one process. Built and run by scripts/bench_conv_onednn.sh; not part of
 * the package (oneDNN is not a dependency of pixconv: formats/benchmarks.md says why).
 *
 * For each layer shape of the SD VAE decoder at a 512×512 image (cin, cout, output h×w):
 *   pixconv f32 / bf16   pe_conv3x3_image on an f32 [cin][h][w] input, output f32 [cout][h][w],
 *                        with the GroupNorm affine and SiLU applied while the band is filled
 *                        (the work the decoder asks of it);
 *   onednn f32 / bf16    oneDNN's convolution_forward, format "any" (oneDNN's blocked layout),
 *                        (a) the primitive alone, on input already in its layout (the best case:
 *                        a whole decoder kept in oneDNN's layout), and (b) with the reorders from
 *                        and to the plain [c][h][w] f32 layout the rest of the decoder uses
 *                        (bf16: the input reorder also rounds to bf16); the GroupNorm/SiLU pass,
 *                        which oneDNN cannot fuse before a convolution, is not counted.
 * Prints GFLOP/s per configuration (2·cin·cout·9·h·w per convolution), medians of REPS runs. */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pixconv_engine.h"

#define CHECK(x)                                                                  \
    do {                                                                          \
        dnnl_status_t s_ = (x);                                                   \
        if (s_ != dnnl_success) {                                                 \
            fprintf(stderr, "oneDNN: %s failed (%d) at line %d\n", #x, s_, __LINE__); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof(double), cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

typedef struct { int cin, cout, h, w, count; const char *what; } layer;

/* The decoder of AutoencoderKL (block_out_channels 128, 256, 512, 512) at a 64×64 latent. */
static const layer layers[] = {
    {512, 512, 64, 64, 10, "mid block and up block 0 resnets (64²)"},
    {512, 512, 128, 128, 7, "up block 0 upsampler, up block 1 resnets (128²)"},
    {512, 512, 256, 256, 1, "up block 1 upsampler (256²)"},
    {512, 256, 256, 256, 1, "up block 2 resnet 0 conv1 (256²)"},
    {256, 256, 256, 256, 5, "up block 2 resnets (256²)"},
    {256, 256, 512, 512, 1, "up block 2 upsampler (512²)"},
    {256, 128, 512, 512, 1, "up block 3 resnet 0 conv1 (512²)"},
    {128, 128, 512, 512, 5, "up block 3 resnets (512²)"},
};

static int reps = 3;

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t st;
} ctx;

static double onednn_conv(ctx *c, const layer *L, int bf16, int with_reorders, const float *x, const float *wt,
                          const float *bias, float *y) {
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t sd = {1, L->cin, L->h, L->w}, wd = {L->cout, L->cin, 3, 3}, bd = {L->cout},
                dd = {1, L->cout, L->h, L->w}, strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t src_any, w_any, b_md, dst_any, src_plain, w_plain, dst_plain;
    CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&src_plain, 4, sd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&w_plain, 4, wd, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_plain, 4, dd, dnnl_f32, dnnl_nchw));
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_any,
                                             &w_any, &b_md, &dst_any, strides, pad, pad));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, c->eng, NULL));
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_t conv;
    CHECK(dnnl_primitive_create(&conv, pd));

    dnnl_memory_t m_src_plain, m_w_plain, m_dst_plain, m_src, m_w, m_b, m_dst;
    CHECK(dnnl_memory_create(&m_src_plain, &src_plain, c->eng, (void *)x));
    CHECK(dnnl_memory_create(&m_w_plain, &w_plain, c->eng, (void *)wt));
    CHECK(dnnl_memory_create(&m_dst_plain, &dst_plain, c->eng, y));
    CHECK(dnnl_memory_create(&m_src, src_md, c->eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&m_w, w_md, c->eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&m_b, &b_md, c->eng, (void *)bias));
    CHECK(dnnl_memory_create(&m_dst, dst_md, c->eng, DNNL_MEMORY_ALLOCATE));

    dnnl_primitive_desc_t rpd[3];
    dnnl_primitive_t rp[3];
    CHECK(dnnl_reorder_primitive_desc_create(&rpd[0], &src_plain, c->eng, src_md, c->eng, NULL));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd[1], &w_plain, c->eng, w_md, c->eng, NULL));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd[2], dst_md, c->eng, &dst_plain, c->eng, NULL));
    for (int i = 0; i < 3; i++) CHECK(dnnl_primitive_create(&rp[i], rpd[i]));
    dnnl_exec_arg_t r0[] = {{DNNL_ARG_FROM, m_src_plain}, {DNNL_ARG_TO, m_src}};
    dnnl_exec_arg_t r1[] = {{DNNL_ARG_FROM, m_w_plain}, {DNNL_ARG_TO, m_w}};
    dnnl_exec_arg_t r2[] = {{DNNL_ARG_FROM, m_dst}, {DNNL_ARG_TO, m_dst_plain}};
    dnnl_exec_arg_t ca[] = {{DNNL_ARG_SRC, m_src}, {DNNL_ARG_WEIGHTS, m_w}, {DNNL_ARG_BIAS, m_b}, {DNNL_ARG_DST, m_dst}};
    /* weights are converted once (as a loaded model would keep them) */
    CHECK(dnnl_primitive_execute(rp[1], c->st, 2, r1));
    CHECK(dnnl_primitive_execute(rp[0], c->st, 2, r0));
    CHECK(dnnl_stream_wait(c->st));
    double t[16];
    for (int i = 0; i <= reps; i++) {
        double t0 = now();
        if (with_reorders) CHECK(dnnl_primitive_execute(rp[0], c->st, 2, r0));
        CHECK(dnnl_primitive_execute(conv, c->st, 4, ca));
        if (with_reorders) CHECK(dnnl_primitive_execute(rp[2], c->st, 2, r2));
        CHECK(dnnl_stream_wait(c->st));
        if (i) t[i - 1] = now() - t0;
    }
    if (!with_reorders) { /* the result in plain layout, for the check */
        CHECK(dnnl_primitive_execute(rp[2], c->st, 2, r2));
        CHECK(dnnl_stream_wait(c->st));
    }
    for (int i = 0; i < 3; i++) { dnnl_primitive_destroy(rp[i]); dnnl_primitive_desc_destroy(rpd[i]); }
    dnnl_primitive_destroy(conv);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_t ms[] = {m_src_plain, m_w_plain, m_dst_plain, m_src, m_w, m_b, m_dst};
    for (int i = 0; i < 7; i++) dnnl_memory_destroy(ms[i]);
    return median(t, reps);
}

static double pixconv_conv(const layer *L, int bf16, const float *x, const float *wt, const float *bias,
                           const float *scale, const float *shift, float *y, int fused) {
    /* weights in the engine's depth order [cout][ky][kx][cin] */
    size_t K = (size_t)9 * L->cin;
    float *wk = malloc(sizeof(float) * K * L->cout);
    uint16_t *wb = malloc(2 * K * L->cout);
    for (int o = 0; o < L->cout; o++)
        for (int ci = 0; ci < L->cin; ci++)
            for (int s = 0; s < 9; s++) {
                float v = wt[((size_t)o * L->cin + ci) * 9 + s];
                wk[o * K + s * L->cin + ci] = v;
                wb[o * K + s * L->cin + ci] = to_bf16(v);
            }
    pe_conv_input in = {x, L->cin, L->h, L->w, 0, fused ? scale : NULL, fused ? shift : NULL, fused};
    double t[16];
    for (int i = 0; i <= reps; i++) {
        double t0 = now();
        if (pe_conv3x3_image(in, bf16 ? (void *)wb : (void *)wk, !bf16, L->cout, bias, y, 0, 0) < 0) {
            fprintf(stderr, "pe_conv3x3_image failed (CPU without AVX-512?)\n");
            exit(1);
        }
        if (i) t[i - 1] = now() - t0;
    }
    free(wk);
    free(wb);
    return median(t, reps);
}

static double maxdiff(const float *a, const float *b, size_t n, double *scale) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    *scale = s;
    return m;
}

int main(int argc, char **argv) {
    if (argc > 1) reps = atoi(argv[1]);
    if (reps < 1 || reps > 15) reps = 3;
    int threads = getenv("THREADS") ? atoi(getenv("THREADS")) : 0;
    pe_set_threads(threads);
    ctx c;
    CHECK(dnnl_engine_create(&c.eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&c.st, c.eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d (cpu runtime %u), pixconv engine threads %d, %d runs per figure (median)\n", v->major,
           v->minor, v->patch, v->cpu_runtime, pe_threads(), reps);
    printf("GFLOP/s (2·cin·cout·9·h·w per convolution); oneDNN without the GroupNorm/SiLU pass it cannot fuse\n");
    printf("%-5s %-5s %-9s | %9s %9s %9s | %9s %9s %9s | %s\n", "cin", "cout", "h×w", "px f32", "dnnl f32",
           "+reorder", "px bf16", "dnnl bf16", "+reorder", "max |px − dnnl| / max |y| (f32, bf16)");
    double tot[6] = {0};
    int nl = (int)(sizeof layers / sizeof layers[0]);
    for (int li = 0; li < nl; li++) {
        const layer *L = &layers[li];
        size_t nx = (size_t)L->cin * L->h * L->w, ny = (size_t)L->cout * L->h * L->w, nw = (size_t)L->cout * L->cin * 9;
        float *x = malloc(4 * nx), *xt = malloc(4 * nx), *wt = malloc(4 * nw), *bias = malloc(4 * L->cout);
        float *scale = malloc(4 * L->cin), *shift = malloc(4 * L->cin), *y1 = malloc(4 * ny), *y2 = malloc(4 * ny);
        unsigned s = 1234 + li;
        for (size_t i = 0; i < nx; i++) x[i] = frand(&s);
        for (size_t i = 0; i < nw; i++) wt[i] = frand(&s) * 0.05f;
        for (int i = 0; i < L->cout; i++) bias[i] = frand(&s);
        for (int i = 0; i < L->cin; i++) { scale[i] = 1 + 0.1f * frand(&s); shift[i] = 0.1f * frand(&s); }
        /* oneDNN gets the input already through GroupNorm's affine and SiLU */
        for (int ci = 0; ci < L->cin; ci++)
            for (size_t p = 0; p < (size_t)L->h * L->w; p++) {
                float u = x[ci * (size_t)L->h * L->w + p] * scale[ci] + shift[ci];
                xt[ci * (size_t)L->h * L->w + p] = u / (1 + expf(-u));
            }
        double flop = 2.0 * L->cin * L->cout * 9.0 * L->h * L->w, t[6], sc;
        t[0] = pixconv_conv(L, 0, x, wt, bias, scale, shift, y1, 1);
        t[1] = onednn_conv(&c, L, 0, 0, xt, wt, bias, y2);
        double d32 = maxdiff(y1, y2, ny, &sc) / sc;
        t[2] = onednn_conv(&c, L, 0, 1, xt, wt, bias, y2);
        t[3] = pixconv_conv(L, 1, x, wt, bias, scale, shift, y1, 1);
        t[4] = onednn_conv(&c, L, 1, 0, xt, wt, bias, y2);
        double d16 = maxdiff(y1, y2, ny, &sc) / sc;
        t[5] = onednn_conv(&c, L, 1, 1, xt, wt, bias, y2);
        char hw[32];
        snprintf(hw, sizeof hw, "%d×%d", L->h, L->w);
        printf("%-5d %-5d %-9s | %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f | %.1e %.1e  ×%d %s\n", L->cin, L->cout, hw,
               flop / t[0] / 1e9, flop / t[1] / 1e9, flop / t[2] / 1e9, flop / t[3] / 1e9, flop / t[4] / 1e9,
               flop / t[5] / 1e9, d32, d16, L->count, L->what);
        fflush(stdout);
        for (int k = 0; k < 6; k++) tot[k] += t[k] * L->count;
        free(x); free(xt); free(wt); free(bias); free(scale); free(shift); free(y1); free(y2);
    }
    printf("decoder 3×3 convolutions at 512², weighted by count, seconds: pixconv f32 %.2f, oneDNN f32 %.2f (%.2f with "
           "reorders); pixconv bf16 %.2f, oneDNN bf16 %.2f (%.2f with reorders)\n",
           tot[0], tot[1], tot[2], tot[3], tot[4], tot[5]);
    dnnl_stream_destroy(c.st);
    dnnl_engine_destroy(c.eng);
    return 0;
}
