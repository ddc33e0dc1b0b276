import CEngine
import Foundation

/// Multi-head scaled-dot-product attention on packed heads: softmax(Q·Kᵀ/√d + bias)·V
/// (D: `attention_processor.py::AttnProcessor2_0`, `F.scaled_dot_product_attention`, default scale).
///
/// Layouts: q (B, Nq, H·d), k and v (B, Nk, H·d), head h in columns h·d..<(h+1)·d; `keyBias`
/// (B, Nk) is added to every query row of every head (PixArt's −10000 caption mask); output (B, Nq, H·d).
public enum Attention {
    /// Fused attention (`pe_attention`): per batch, head and block of 128 queries, scores against
    /// 512 keys at a time with an online softmax, so no score matrix is ever whole; the blocks
    /// run on the engine's pool.
    public static func attention(q: [Float], k: [Float], v: [Float], batch: Int, queries nq: Int, keys nk: Int,
                                 heads: Int, headDim d: Int, keyBias: [Float]?) -> [Float] {
        let width = heads * d
        precondition(q.count == batch * nq * width && k.count == batch * nk * width && v.count == k.count)
        precondition(keyBias.map { $0.count == batch * nk } ?? true)
        var out = [Float](repeating: 0, count: batch * nq * width)
        guard nq > 0, nk > 0, d > 0, batch > 0 else { return out }
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        func run(_ kb: UnsafePointer<Float>?) {
                            fused(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!,
                                  batch: batch, queries: nq, keys: nk, heads: heads, headDim: d,
                                  scale: Float(1 / Double(d).squareRoot()), keyBias: kb, bias: nil)
                        }
                        if let keyBias { keyBias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                    }
                }
            }
        }
        return out
    }

    /// Whether `fused(..., bf16: true)` runs bf16 dot products on this CPU for head dim `d`.
    public static func runsBF16(headDim d: Int) -> Bool {
        var a = pe_attention_args()
        a.d = Int64(d)
        a.bf16 = 1
        return pe_attention_bf16(a) != 0
    }

    /// Pointer form (with `bf16`, q, k, the probabilities and v are rounded to bf16 and their
    /// products summed in f32, where the CPU has AVX512_BF16; f32 otherwise): q, out (B, Nq, H·d) and k, v (B, Nk, H·d) with the given row strides
    /// (default H·d); keyBias (B, Nk) or nil; bias (H, Nq, Nk), shared by the batch, or nil.
    public static func fused(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             out: UnsafeMutablePointer<Float>, batch: Int, queries nq: Int, keys nk: Int,
                             heads: Int, headDim d: Int, scale: Float, keyBias: UnsafePointer<Float>?,
                             bias: UnsafePointer<Float>?, ldq: Int? = nil, ldk: Int? = nil, ldv: Int? = nil,
                             ldo: Int? = nil, bf16: Bool = false) {
        let w = heads * d
        let lq = ldq ?? w, lk = ldk ?? w, lv = ldv ?? w, lo = ldo ?? w
        let args = pe_attention_args(batch: Int64(batch), heads: Int64(heads), nq: Int64(nq), nk: Int64(nk), d: Int64(d),
                                     ldq: Int64(lq), ldk: Int64(lk), ldv: Int64(lv), ldo: Int64(lo),
                                     q_bstride: Int64(nq * lq), k_bstride: Int64(nk * lk), v_bstride: Int64(nk * lv),
                                     o_bstride: Int64(nq * lo), scale: scale, key_bias: keyBias, bias: bias,
                                     bf16: bf16 ? 1 : 0)
        pe_attention(q, k, v, out, args)
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
