/* Run-time CPU features and ISA names. */
#include "pixconv_engine.h"

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
