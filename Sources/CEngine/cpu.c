/* Run-time CPU features and ISA names. */
#include "pixconv_engine.h"

#include <pthread.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static int detect(void) {
    unsigned a, b, c, d;
    int f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;          /* XMM and YMM state */
    int zmm = (lo & 0xe6u) == 0xe6u;        /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    if (avx2 && fma && f16c) f |= PE_CPU_AVX2;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1); /* F DQ BW VL */
    if ((f & PE_CPU_AVX2) && avx512 && zmm) {
        f |= PE_CPU_AVX512;
        if ((c >> 11) & 1) f |= PE_CPU_AVX512VNNI;
        unsigned a1, b1, c1, d1;
        if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1)) f |= PE_CPU_AVX512BF16;
    }
    unsigned a1, b1, c1, d1;
    if ((f & PE_CPU_AVX2) && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 4) & 1)) f |= PE_CPU_AVXVNNI;
    return f;
}
#else
static int detect(void) { return 0; }
#endif

int pe_cpu_features(void) {
    /* Racing first calls (from pool workers too) store the same value: relaxed atomics say so. */
    static _Atomic int state = -1;
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s < 0) {
        s = detect();
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s;
}

int pe_isa_supported(pe_isa isa) {
    int f = pe_cpu_features();
    switch (isa) {
    case PE_ISA_AUTO: case PE_ISA_REF: return 1;
    case PE_ISA_AVX2: return (f & PE_CPU_AVX2) != 0;
    case PE_ISA_SGEMM: return 1;
    case PE_ISA_VNNI512: return (f & PE_CPU_AVX512VNNI) != 0;
    case PE_ISA_BF16_512: return (f & PE_CPU_AVX512BF16) != 0;
    case PE_ISA_F32_512: return (f & PE_CPU_AVX512) != 0;
    case PE_ISA_DNNL_F32: return pe_dnnl_available();
    }
    return 0;
}

const char *pe_isa_name(pe_isa isa) {
    switch (isa) {
    case PE_ISA_AUTO: return "auto";
    case PE_ISA_REF: return "reference";
    case PE_ISA_AVX2: return "avx2";
    case PE_ISA_SGEMM: return "sgemm";
    case PE_ISA_VNNI512: return "avx512-vnni";
    case PE_ISA_BF16_512: return "avx512-bf16";
    case PE_ISA_F32_512: return "avx512-f32";
    case PE_ISA_DNNL_F32: return "onednn-f32";
    }
    return "unknown";
}

/* ---- does bf16 pay? ----
 * vdpbf16ps multiplies twice the pairs of one FMA on zmm, so bf16 arithmetic doubles the products
 * per cycle where both issue at the same rate (AMD Zen 4, whose 512-bit FMA is split in two
 * halves), and loses where FMA issues more often (0.47 on an Intel Xeon of family 6 model 207,
 * with two 512-bit FMA ports). Measured once per process: 12 independent chains of each
 * instruction, the fastest of three timings; bf16 "pays" when it gives at least 1.5× the products of FMA per second. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHAINS 12
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), noinline)) static double time_bf16(long n) {
    __m512 acc[CHAINS];
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_setzero_ps();
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80); /* bf16 1.0 */
    double t0 = seconds();
    for (long i = 0; i < n; i++)
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_dpbf16_ps(acc[k], x, x);
    double t = seconds() - t0;
    volatile float sink = 0;
    for (int k = 0; k < CHAINS; k++) sink += _mm512_reduce_add_ps(acc[k]);
    (void)sink;
    return t;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"), noinline)) static double time_fma(long n) {
    __m512 acc[CHAINS];
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_setzero_ps();
    __m512 x = _mm512_set1_ps(1.0f);
    double t0 = seconds();
    for (long i = 0; i < n; i++)
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], x, x);
    double t = seconds() - t0;
    volatile float sink = 0;
    for (int k = 0; k < CHAINS; k++) sink += _mm512_reduce_add_ps(acc[k]);
    (void)sink;
    return t;
}

static double measure_gain(void) {
    if (!pe_isa_supported(PE_ISA_BF16_512)) return 0;
    const long n = 100000; /* 1.2 M instructions of each, about 0.5 ms */
    double b = 1e9, f = 1e9;
    for (int r = 0; r < 3; r++) {
        double tb = time_bf16(n), tf = time_fma(n);
        if (tb < b) b = tb;
        if (tf < f) f = tf;
    }
    return b > 0 ? 2.0 * f / b : 0;
}
#else
static double measure_gain(void) { return 0; }
#endif

static _Atomic int bf16_state = -1;  /* −1 unknown, else 1000 × gain */
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
static void bf16_measure(void) { atomic_store(&bf16_state, (int)(measure_gain() * 1000 + 0.5)); }

double pe_bf16_gain(void) {
    pthread_once(&bf16_once, bf16_measure);
    return atomic_load(&bf16_state) / 1000.0;
}

int pe_bf16_pays(void) { return pe_bf16_gain() >= 1.5; }
