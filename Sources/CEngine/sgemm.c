/* The engine's one f32 matrix product. oneDNN's dnnl_sgemm (JIT kernels chosen from cpuid at run
 * time) runs it; OpenBLAS's cblas_sgemm only where oneDNN refuses the call. Debian's OpenBLAS
 * 0.3.21 picks its kernels from the CPU model number and falls back to its SSE3 "Prescott"
 * kernels on CPUs newer than it knows (an Intel Xeon of model 207 measured 30 GFLOP/s per core
 * there against 145 from oneDNN, formats/benchmarks.md); oneDNN dispatches on the instruction
 * sets instead. Both run single-threaded inside the engine's pool tasks. */
#include "engine_internal.h"
#include <cblas.h>
#include <dnnl.h>

void omp_set_num_threads(int n); /* libgomp, which Debian's oneDNN runs on */

void pe_omp_single(void) {
    static __thread int done;
    if (!done) {
        omp_set_num_threads(1);
        done = 1;
    }
}

void pe_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    pe_omp_single();
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) ==
        dnnl_success)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
