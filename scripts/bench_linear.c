/* The linear operation alone (pe_linear), on the shapes of a guided 512² DiT step and of a
 * T5-v1.1-XXL encode, per stored type and kernel, in one process. Built and run by
 * scripts/bench_linear.sh, which also times torch's f32 and dynamic-int8 linear layers on the
 * same shapes (scripts/bench_linear.py) so that the ratio comes from one run.
 *
 *   bench_linear REPS [filter]     prints: shape M K N, type, kernel, ms (median), GOP/s
 *
 * GOP/s counts 2·M·K·N operations per call. Weights are random Q8_0 / Q4_0 / F32 rows in
 * GGUF's layout; activations are uniform in [−1, 1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "pixconv_engine.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static uint16_t half_of(float f) { /* positive normal scales only */
    uint32_t u;
    memcpy(&u, &f, 4);
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    return (uint16_t)((e << 10) | ((u >> 13) & 0x3ff));
}

static size_t row_bytes(pe_wtype t, int64_t K) {
    return t == PE_W_F32 ? (size_t)K * 4 : (size_t)(K / 32) * (t == PE_W_Q8_0 ? 34 : 18);
}

static void *weights(pe_wtype t, int64_t N, int64_t K, unsigned *s) {
    size_t row = row_bytes(t, K);
    uint8_t *w = malloc(row * (size_t)N);
    for (int64_t n = 0; n < N; n++) {
        uint8_t *r = w + (size_t)n * row;
        if (t == PE_W_F32) {
            for (int64_t k = 0; k < K; k++) { float v = frand(s) * 0.05f; memcpy(r + 4 * k, &v, 4); }
            continue;
        }
        int64_t bb = t == PE_W_Q8_0 ? 34 : 18;
        for (int64_t b = 0; b < K / 32; b++) {
            uint16_t h = half_of(0.001f + 0.001f * (frand(s) + 1));
            memcpy(r + b * bb, &h, 2);
            for (int64_t i = 2; i < bb; i++) r[b * bb + i] = (uint8_t)(t == PE_W_Q8_0 ? (int)(frand(s) * 127) : (int)((frand(s) + 1) * 127.99));
        }
    }
    return w;
}

typedef struct { const char *name; int64_t M, K, N; } shape;

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 2 ? argv[2] : "";
    const char *th = getenv("THREADS");
    pe_set_threads(th ? atoi(th) : 0);
    static const shape shapes[] = {
        {"dit-qkvo", 2048, 1152, 1152}, {"dit-ff1", 2048, 1152, 4608}, {"dit-ff2", 2048, 4608, 1152},
        {"dit-cross-kv", 240, 4096, 1152},
        {"t5-attn", 240, 4096, 4096}, {"t5-wi", 240, 4096, 10240}, {"t5-wo", 240, 10240, 4096},
    };
    struct { pe_wtype t; pe_isa isa; const char *name; } cfgs[] = {
        {PE_W_Q8_0, PE_ISA_AUTO, "q8_0"}, {PE_W_Q4_0, PE_ISA_AUTO, "q4_0"}, {PE_W_F32, PE_ISA_AUTO, "f32"},
    };
    unsigned seed = 1234;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *sh = &shapes[si];
        if (filter[0] && !strstr(sh->name, filter)) continue;
        float *x = malloc(sizeof(float) * sh->M * sh->K), *y = malloc(sizeof(float) * sh->M * sh->N);
        for (int64_t i = 0; i < sh->M * sh->K; i++) x[i] = frand(&seed);
        for (size_t ci = 0; ci < sizeof cfgs / sizeof *cfgs; ci++) {
            void *w = weights(cfgs[ci].t, sh->N, sh->K, &seed);
            pe_linear_opts o = {0, 0, cfgs[ci].isa};
            int isa = pe_linear(x, sh->K, sh->M, sh->K, w, cfgs[ci].t, sh->N, NULL, y, sh->N, o); /* warm-up */
            double t[64];
            int n = reps < 64 ? reps : 64;
            for (int r = 0; r < n; r++) {
                double t0 = now();
                pe_linear(x, sh->K, sh->M, sh->K, w, cfgs[ci].t, sh->N, NULL, y, sh->N, o);
                t[r] = now() - t0;
            }
            qsort(t, n, sizeof(double), cmp);
            double med = t[n / 2];
            printf("%-13s %5lld %6lld %6lld  %-5s %-12s %9.2f ms %7.1f GOP/s\n", sh->name, (long long)sh->M,
                   (long long)sh->K, (long long)sh->N, cfgs[ci].name, isa >= 0 ? pe_isa_name((pe_isa)isa) : "none",
                   med * 1e3, 2.0 * sh->M * sh->K * sh->N / med * 1e-9);
            fflush(stdout);
            free(w);
        }
        free(x);
        free(y);
    }
    /* the DiT's self-attention at 512² (batch 2, 16 heads, 1024 tokens, head dim 72), f32 */
    if (!filter[0] || strstr("dit-attention", filter)) {
        int64_t B = 2, H = 16, L = 1024, D = 72, ld = H * D;
        float *q = malloc(sizeof(float) * B * L * ld), *k = malloc(sizeof(float) * B * L * ld);
        float *v = malloc(sizeof(float) * B * L * ld), *o = malloc(sizeof(float) * B * L * ld);
        for (int64_t i = 0; i < B * L * ld; i++) { q[i] = frand(&seed); k[i] = frand(&seed); v[i] = frand(&seed); }
        pe_attention_args a = {0};
        a.batch = B; a.heads = H; a.nq = L; a.nk = L; a.d = D;
        a.ldq = a.ldk = a.ldv = a.ldo = ld;
        a.q_bstride = a.k_bstride = a.v_bstride = a.o_bstride = L * ld;
        a.scale = 1.0f / sqrtf((float)D);
        pe_attention(q, k, v, o, a);
        double t[64];
        int n = reps < 64 ? reps : 64;
        for (int r = 0; r < n; r++) {
            double t0 = now();
            pe_attention(q, k, v, o, a);
            t[r] = now() - t0;
        }
        qsort(t, n, sizeof(double), cmp);
        double flop = 4.0 * B * H * L * L * D;
        printf("%-13s %5lld %6lld %6lld  %-5s %-12s %9.2f ms %7.1f GFLOP/s\n", "dit-attention", (long long)(B * H),
               (long long)L, (long long)D, "f32", "pe_attention", t[n / 2] * 1e3, flop / t[n / 2] * 1e-9);
        free(q); free(k); free(v); free(o);
    }
    return 0;
}
