import Foundation

/// Multi-head scaled-dot-product attention on packed heads: softmax(Q·Kᵀ/√d + bias)·V
/// (D: `attention_processor.py::AttnProcessor2_0`, `F.scaled_dot_product_attention`, default scale).
///
/// Layouts: q (B, Nq, H·d), k and v (B, Nk, H·d), head h in columns h·d..<(h+1)·d; `keyBias`
/// (B, Nk) is added to every query row of every head (PixArt's −10000 caption mask); output (B, Nq, H·d).
public enum Attention {
    /// Query rows per score block, so the score matrix stays at `queryBlock × Nk` floats.
    static let queryBlock = 1024

    /// GEMM version: per batch, head and block of queries, S = α·Q·Kᵀ and O = softmax(S)·V via `Kernels.gemm`.
    public static func attention(q: [Float], k: [Float], v: [Float], batch: Int, queries nq: Int, keys nk: Int,
                                 heads: Int, headDim d: Int, keyBias: [Float]?) -> [Float] {
        let width = heads * d
        precondition(q.count == batch * nq * width && k.count == batch * nk * width && v.count == k.count)
        precondition(keyBias.map { $0.count == batch * nk } ?? true)
        var out = [Float](repeating: 0, count: batch * nq * width)
        guard nq > 0, nk > 0, d > 0 else { return out }
        let scale = Float(1 / Double(d).squareRoot())
        let block = min(queryBlock, nq)
        var scores = [Float](repeating: 0, count: block * nk)
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        for b in 0..<batch {
                            for h in 0..<heads {
                                let kBase = kp.baseAddress! + b * nk * width + h * d
                                let vBase = vp.baseAddress! + b * nk * width + h * d
                                var r0 = 0
                                while r0 < nq {
                                    let rows = min(block, nq - r0)
                                    let qBase = qp.baseAddress! + (b * nq + r0) * width + h * d
                                    scores.withUnsafeMutableBufferPointer { sp in
                                        Kernels.gemm(transA: false, transB: true, m: rows, n: nk, k: d, alpha: scale,
                                                     a: qBase, lda: width, b: kBase, ldb: width,
                                                     beta: 0, c: sp.baseAddress!, ldc: nk)
                                        if let keyBias {
                                            for r in 0..<rows {
                                                for j in 0..<nk { sp[r * nk + j] += keyBias[b * nk + j] }
                                            }
                                        }
                                    }
                                    Kernels.softmax(&scores, rows: rows, dim: nk)
                                    scores.withUnsafeBufferPointer { sp in
                                        Kernels.gemm(transA: false, transB: false, m: rows, n: d, k: nk,
                                                     a: sp.baseAddress!, lda: nk, b: vBase, ldb: width, beta: 0,
                                                     c: op.baseAddress! + (b * nq + r0) * width + h * d, ldc: width)
                                    }
                                    r0 += rows
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Plain loops with double accumulation (the reference for tests).
    public static func attentionReference(q: [Float], k: [Float], v: [Float], batch: Int, queries nq: Int, keys nk: Int,
                                          heads: Int, headDim d: Int, keyBias: [Float]?) -> [Float] {
        let width = heads * d
        var out = [Float](repeating: 0, count: batch * nq * width)
        let scale = 1 / Double(d).squareRoot()
        var s = [Double](repeating: 0, count: nk)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<nq {
                    var m = -Double.infinity
                    for j in 0..<nk {
                        var acc = 0.0
                        for c in 0..<d {
                            acc += Double(q[(b * nq + i) * width + h * d + c]) * Double(k[(b * nk + j) * width + h * d + c])
                        }
                        s[j] = acc * scale + Double(keyBias?[b * nk + j] ?? 0)
                        m = max(m, s[j])
                    }
                    var sum = 0.0
                    for j in 0..<nk {
                        s[j] = Foundation.exp(s[j] - m)
                        sum += s[j]
                    }
                    for c in 0..<d {
                        var acc = 0.0
                        for j in 0..<nk { acc += s[j] * Double(v[(b * nk + j) * width + h * d + c]) }
                        out[(b * nq + i) * width + h * d + c] = Float(acc / sum)
                    }
                }
            }
        }
        return out
    }
}
