import CEngine
import Foundation

/// The layers of the T5 encoder in f32 (T: `modeling_t5.py`), as free functions over row-major
/// arrays; the projections are the encoder's `LinearWeight`s, attention is the engine's.
enum T5Layers {
    /// Bucket of `relative = key − query` (T: `T5Attention._relative_position_bucket`,
    /// bidirectional). The logarithmic part emulates the float32 tensor arithmetic:
    /// `max_exact + long(float32(log(float32(n) / max_exact)) / float32(log(max_distance / max_exact)) · (nb − max_exact))`.
    static func relativePositionBucket(_ relative: Int, numBuckets: Int, maxDistance: Int) -> Int {
        let half = numBuckets / 2
        var bucket = relative > 0 ? half : 0
        let n = abs(relative)
        let maxExact = half / 2
        if n < maxExact { return bucket + n }
        let logRatio = Float(log(Double(maxDistance) / Double(maxExact)))
        let scaled = logf(Float(n) / Float(maxExact)) / logRatio * Float(half - maxExact)
        // clamped to [0, half] so no config can index outside the table (torch would fail there)
        let large = maxExact + (scaled.isFinite ? Int(min(max(scaled, 0), Float(half))) : half)
        bucket += min(large, half - 1)
        return bucket
    }

    /// Position bias with the attention mask folded in, (heads, L, L):
    /// `table[bucket(j − i), h] + (1 − mask[j]) · finfo(f32).min` (T: `T5Attention.compute_bias`
    /// plus the extended mask of `T5Stack`). table: (buckets, heads).
    static func positionBias(length: Int, mask: [Int32], table: [Float], heads: Int,
                             numBuckets: Int, maxDistance: Int) -> [Float] {
        var bias = [Float](repeating: 0, count: heads * length * length)
        let minValue = -Float.greatestFiniteMagnitude
        for i in 0..<length {
            for j in 0..<length {
                let b = relativePositionBucket(j - i, numBuckets: numBuckets, maxDistance: maxDistance)
                let masked: Float = mask[j] == 0 ? minValue : 0
                for h in 0..<heads {
                    // bias + min rounds to min (finite); softmax then gives an exact 0 for it
                    bias[(h * length + i) * length + j] = table[b * heads + h] + masked
                }
            }
        }
        return bias
    }

    /// Self-attention of one sequence (T: `T5Attention.forward` + `eager_attention_forward`):
    /// `softmax(q·kᵀ + bias)·v` per head, without 1/√d scaling, through the engine's fused
    /// attention (the encoder calls the same on its workspace). q, k, v: (L, heads·dKv) → (L, heads·dKv).
    static func attention(q: [Float], k: [Float], v: [Float], bias: [Float],
                          length: Int, heads: Int, dKv: Int) -> [Float] {
        var out = [Float](repeating: 0, count: length * heads * dKv)
        q.withUnsafeBufferPointer { pq in
            k.withUnsafeBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in
                    bias.withUnsafeBufferPointer { pb in
                        out.withUnsafeMutableBufferPointer { po in
                            Attention.fused(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                            batch: 1, queries: length, keys: length, heads: heads, headDim: dKv,
                                            scale: 1, keyBias: nil, bias: pb.baseAddress)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Plain reference attention (loops, no BLAS) for testing `attention`.
    static func attentionReference(q: [Float], k: [Float], v: [Float], bias: [Float],
                                   length: Int, heads: Int, dKv: Int) -> [Float] {
        let inner = heads * dKv
        var out = [Float](repeating: 0, count: length * inner)
        for h in 0..<heads {
            for i in 0..<length {
                var row = [Float](repeating: 0, count: length)
                for j in 0..<length {
                    var s: Float = 0
                    for d in 0..<dKv { s += q[i * inner + h * dKv + d] * k[j * inner + h * dKv + d] }
                    row[j] = s + bias[(h * length + i) * length + j]
                }
                let m = row.max() ?? 0
                let e = row.map { expf($0 - m) }
                let sum = e.reduce(0, +)
                for d in 0..<dKv {
                    var acc: Float = 0
                    for j in 0..<length { acc += e[j] / sum * v[j * inner + h * dKv + d] }
                    out[i * inner + h * dKv + d] = acc
                }
            }
        }
        return out
    }

    /// Applies the feed-forward activation in place (T: `activations.py`).
    static func activate(_ x: inout [Float], _ act: T5Config.Activation) {
        x.withUnsafeMutableBufferPointer { activate($0, act) }
    }

    static func activate(_ p: UnsafeMutableBufferPointer<Float>, _ act: T5Config.Activation) {
        guard let base = p.baseAddress else { return }
        switch act {
        case .geluNew: pe_gelu_tanh(base, Int64(p.count))
        case .silu: pe_silu(base, Int64(p.count))
        case .relu:
            for i in p.indices { p[i] = max(p[i], 0) }
        case .gelu:
            for i in p.indices { p[i] = 0.5 * p[i] * (1 + erff(p[i] * 0.70710678118654752)) }
        }
    }
}
