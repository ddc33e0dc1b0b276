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

    /// Splits `0..<count` into one range per core and runs `body` on them concurrently when
    /// `work` (elements touched) is large enough to pay for the threads; on one core otherwise.
    /// `concurrentPerform` returns only after every part has finished.
    public static func parallelRanges(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let parts = min(count, cores, max(1, work / (1 << 16)))
        guard parts > 1 else {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = RowTask(body: body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                task.body(count * part / parts..<count * (part + 1) / parts)
            }
        }
    }

    static func forEachRowChunk(rows: Int, width: Int, _ body: (Range<Int>) -> Void) {
        parallelRanges(rows, work: rows * width, body)
    }

    /// LayerNorm over the last axis of x[rows, dim], without affine parameters (biased variance).
    public static func layerNorm(_ x: inout [Float], rows: Int, dim: Int, eps: Float) {
        x.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            forEachRowChunk(rows: rows, width: dim) { range in
                KernelsReference.layerNorm(p.pointer, rows: range, dim: dim, eps: eps)
            }
        }
    }

    /// Softmax over the last axis of x[rows, dim], max-subtracted.
    public static func softmax(_ x: inout [Float], rows: Int, dim: Int) {
        x.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            forEachRowChunk(rows: rows, width: dim) { range in
                KernelsReference.softmax(p.pointer, rows: range, dim: dim)
            }
        }
    }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh(_ x: inout [Float]) {
        elementwise(&x, KernelsReference.geluTanh)
    }

    /// SiLU: x·σ(x).
    public static func silu(_ x: inout [Float]) {
        elementwise(&x, KernelsReference.silu)
    }

    /// Runs an in-place elementwise kernel over `x` in chunks, on both cores when large.
    private static func elementwise(
        _ x: inout [Float], _ kernel: (UnsafeMutablePointer<Float>, Range<Int>) -> Void
    ) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let p = SendablePointer(base)
            let width = 4096
            forEachRowChunk(rows: (n + width - 1) / width, width: width) { range in
                kernel(p.pointer, (range.lowerBound * width)..<min(n, range.upperBound * width))
            }
        }
    }
}

/// A pointer handed to the parts of a `concurrentPerform`; each part touches a disjoint range.
struct SendablePointer: @unchecked Sendable {  // parts write disjoint ranges; the caller waits for all
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

private struct RowTask: @unchecked Sendable {  // concurrentPerform returns only after every part ran
    let body: (Range<Int>) -> Void
}

/// The plain single-threaded kernels: the parallel versions in `Kernels` run these on disjoint
/// row ranges, and tests compare the two.
public enum KernelsReference {
    public static func layerNorm(_ p: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int, eps: Float) {
        for r in rows {
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

    public static func softmax(_ p: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int) {
        for r in rows {
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

    public static func geluTanh(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        let c: Float = 0.7978845608028654
        for i in range {
            let v = p[i]
            p[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
        }
    }

    public static func silu(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for i in range { p[i] = p[i] / (1 + expf(-p[i])) }
    }
}
