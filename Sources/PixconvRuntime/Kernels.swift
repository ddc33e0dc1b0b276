import CBLAS
import Foundation

/// Basic f32 kernels shared by every model. Each optimised kernel has a plain reference
/// version in `KernelsReference.swift`, and tests compare the two.
public enum Kernels {
    /// y[rows, out] = x[rows, in] · W[out, in]ᵀ + b[out]   (PyTorch `nn.Linear`).
    public static func linear(
        _ x: [Float], rows: Int, inFeatures: Int, weight: [Float], outFeatures: Int, bias: [Float]?
    ) -> [Float] {
        precondition(x.count == rows * inFeatures && weight.count == outFeatures * inFeatures)
        var y = [Float](repeating: 0, count: rows * outFeatures)
        if let bias {
            precondition(bias.count == outFeatures)
            y.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    for o in 0..<outFeatures { dst[r * outFeatures + o] = bias[o] }
                }
            }
        }
        guard rows > 0, outFeatures > 0, inFeatures > 0 else { return y }
        gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
             a: x, lda: inFeatures, b: weight, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: &y, ldc: outFeatures)
        return y
    }

    /// C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major, through OpenBLAS.
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Array form of `gemm`.
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int
    ) {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                         a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                         beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
    }

    /// LayerNorm over the last axis of x[rows, dim], without affine parameters (biased variance).
    public static func layerNorm(_ x: inout [Float], rows: Int, dim: Int, eps: Float) {
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let base = r * dim
                var mean: Float = 0
                for i in 0..<dim { mean += p[base + i] }
                mean /= Float(dim)
                var variance: Float = 0
                for i in 0..<dim {
                    let d = p[base + i] - mean
                    variance += d * d
                }
                variance /= Float(dim)
                let inv = 1 / (variance + eps).squareRoot()
                for i in 0..<dim { p[base + i] = (p[base + i] - mean) * inv }
            }
        }
    }

    /// Softmax over the last axis of x[rows, dim], max-subtracted.
    public static func softmax(_ x: inout [Float], rows: Int, dim: Int) {
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let base = r * dim
                var m = -Float.infinity
                for i in 0..<dim { m = max(m, p[base + i]) }
                var sum: Float = 0
                for i in 0..<dim {
                    let e = expf(p[base + i] - m)
                    p[base + i] = e
                    sum += e
                }
                let inv = 1 / sum
                for i in 0..<dim { p[base + i] *= inv }
            }
        }
    }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh(_ x: inout [Float]) {
        let c: Float = 0.7978845608028654
        x.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                let v = p[i]
                p[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
            }
        }
    }

    /// SiLU: x·σ(x).
    public static func silu(_ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = p[i] / (1 + expf(-p[i])) }
        }
    }
}
