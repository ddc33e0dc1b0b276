import CBLAS
import CEngine
import Foundation

/// The f32 building blocks shared by every model, on the engine's one thread pool. The plain
/// single-threaded versions are in `KernelsReference.swift`; tests compare the two.
public enum Kernels {
    /// y[rows, out] = x[rows, in] · W[out, in]ᵀ + b[out] on an f32 array (PyTorch `nn.Linear`).
    public static func linear(
        _ x: [Float], rows: Int, inFeatures: Int, weight: [Float], outFeatures: Int, bias: [Float]?
    ) -> [Float] {
        precondition(x.count == rows * inFeatures && weight.count == outFeatures * inFeatures)
        precondition(bias.map { $0.count == outFeatures } ?? true)
        var y = [Float](repeating: 0, count: rows * outFeatures)
        guard rows > 0, outFeatures > 0, inFeatures > 0 else {
            if let bias, inFeatures == 0 { for r in 0..<rows { for o in 0..<outFeatures { y[r * outFeatures + o] = bias[o] } } }
            return y
        }
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBytes { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    func run(_ bp: UnsafePointer<Float>?) {
                        _ = pe_linear(xp.baseAddress, Int64(inFeatures), Int64(rows), Int64(inFeatures), wp.baseAddress,
                                      PE_W_F32, Int64(outFeatures), bp, yp.baseAddress, Int64(outFeatures),
                                      pe_linear_opts(accumulate: 0, compute_f32: 0, isa: PE_ISA_AUTO))
                    }
                    if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                }
            }
        }
        return y
    }

    /// C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major: the engine's sgemm (oneDNN's,
    /// else OpenBLAS's) on the pool, the rows of C (or its columns, when there are few rows) split between the threads.
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        let threads = Engine.threads
        let work = m * n * max(k, 1)
        let parts = work < (1 << 18) ? 1 : threads * 2
        let splitRows = m >= n || n < 64
        let count = splitRows ? m : n
        let chunks = min(parts, max(1, count / 16))
        let pa = SendableConstPointer(a), pb = SendableConstPointer(b), pc = SendablePointer(c)
        parallelFor(chunks) { part in
            let lo = count * part / chunks, hi = count * (part + 1) / chunks
            guard hi > lo else { return }
            let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
            if splitRows {
                let aOff = transA ? lo : lo * lda
                pe_sgemm(ta, tb, Int64(hi - lo), Int64(n), Int64(k), alpha, pa.pointer + aOff, Int64(lda),
                         pb.pointer, Int64(ldb), beta, pc.pointer + lo * ldc, Int64(ldc))
            } else {
                let bOff = transB ? lo * ldb : lo
                pe_sgemm(ta, tb, Int64(m), Int64(hi - lo), Int64(k), alpha, pa.pointer, Int64(lda),
                         pb.pointer + bOff, Int64(ldb), beta, pc.pointer + lo, Int64(ldc))
            }
        }
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

    /// Runs body(0..<parts) on the engine's pool; returns when every part has run.
    public static func parallelFor(_ parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = PartTask(body: body)
            withExtendedLifetime(task) {
                pe_pool_run({ ctx, part in
                    Unmanaged<PartTask>.fromOpaque(ctx!).takeUnretainedValue().body(Int(part))
                }, Unmanaged.passUnretained(task).toOpaque(), Int64(parts))
            }
        }
    }

    /// Splits `0..<count` into ranges run concurrently on the pool when `work` (elements touched)
    /// is large enough to pay for it; on the calling thread otherwise.
    public static func parallelRanges(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(count, 4 * Engine.threads, max(1, work / (1 << 16)))
        guard parts > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        parallelFor(parts) { part in body(count * part / parts..<count * (part + 1) / parts) }
    }

    /// LayerNorm over the last axis of x[rows, dim], without affine parameters (biased variance).
    public static func layerNorm(_ x: inout [Float], rows: Int, dim: Int, eps: Float) {
        x.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            pe_layernorm_modulate(base, base, Int64(rows), Int64(dim), eps, nil, nil, 0, 0)
        }
    }

    /// Softmax over the last axis of x[rows, dim], max-subtracted.
    public static func softmax(_ x: inout [Float], rows: Int, dim: Int) {
        x.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            pe_softmax_rows(base, Int64(rows), Int64(dim))
        }
    }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh(_ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { p in if let b = p.baseAddress { pe_gelu_tanh(b, Int64(p.count)) } }
    }

    /// SiLU: x·σ(x).
    public static func silu(_ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { p in if let b = p.baseAddress { pe_silu(b, Int64(p.count)) } }
    }
}

/// Pointers handed to the parts of a pool job; each part touches a disjoint range, and the
/// caller waits for all of them.
public struct SendablePointer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

public struct SendableConstPointer: @unchecked Sendable {
    public let pointer: UnsafePointer<Float>
    public init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
}

private final class PartTask: @unchecked Sendable {  // pe_pool_run returns only after every part ran
    let body: (Int) -> Void
    init(body: @escaping (Int) -> Void) { self.body = body }
}
