/* Run-time CPU feature check. */
#include "pixconv_kernels.h"
#include "kernels_internal.h"

#include <stdatomic.h>

#if PIXCONV_X86
#include <cpuid.h>

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || !f16c) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;  /* the OS saves XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;            /* AVX2 */
}
#endif

int pixconv_kernels_accelerated(void) {
#if PIXCONV_X86
    static _Atomic int state = -1;  /* idempotent: racing first calls store the same value */
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s < 0) {
        s = detect();
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s;
#else
    return 0;
#endif
}
