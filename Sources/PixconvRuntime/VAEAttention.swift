/// The VAE mid-block self-attention: diffusers `attention_processor.py::Attention` as
/// `unet_2d_blocks.py::UNetMidBlock2D` builds it for the decoder (one head of dim C, `group_norm`
/// with eps 1e-6, biases on every projection, `residual_connection=True`, rescale 1), run by
/// `AttnProcessor2_0`:
///
///     t = GroupNorm(x) viewed as tokens[N = H·W, C]
///     q, k, v = to_q(t), to_k(t), to_v(t)
///     o = softmax(q·kᵀ / √C)·v
///     out = to_out.0(o) reshaped to [C, H, W] + x
///
/// Keys `to_q/to_k/to_v/to_out.0` (diffusers ≥ 0.14) and the older `query/key/value/proj_attn`
/// are both accepted, as Linear [C, C] or 1×1-conv [C, C, 1, 1] weights.
///
/// Activations stay channel-major ([C, N]); the scores are computed `queryChunk` queries at a time,
/// so memory is queryChunk × N floats instead of N² (N = 16384 for a 1024² image).
struct VAEAttention {
    let channels: Int
    let norm: GroupNorm
    /// [C, C] row-major (out, in) and [C] each.
    let wq: [Float], bq: [Float]
    let wk: [Float], bk: [Float]
    let wv: [Float], bv: [Float]
    let wo: [Float], bo: [Float]

    /// Queries per score block: 1024 × 16384 floats = 64 MiB at 1024² pixels.
    let queryChunk: Int
    /// Upper bound on one score block, for images larger than 1024².
    static let scoreFloats = 1 << 24

    /// `weights`: a scope such as `decoder.mid_block.attentions.0`.
    init(weights: Weights, channels: Int, groups: Int, eps: Float = 1e-6, queryChunk: Int = 1024) throws {
        precondition(queryChunk > 0)
        self.channels = channels
        self.queryChunk = queryChunk
        norm = try GroupNorm(weights: weights.scope("group_norm"), groups: groups, channels: channels, eps: eps)
        let modern = weights.has("to_q.weight")
        func linear(_ modernName: String, _ oldName: String) throws -> ([Float], [Float]) {
            let scope = weights.scope(modern ? modernName : oldName)
            let shape = try scope.shape("weight")
            guard shape == [channels, channels] || shape == [channels, channels, 1, 1] else {
                throw RuntimeError.shapeMismatch(tensor: scope.prefix + "weight", expected: [channels, channels],
                                                 actual: shape)
            }
            return (try scope.floats("weight"), try scope.floats("bias", shape: [channels]))
        }
        (wq, bq) = try linear("to_q", "query")
        (wk, bk) = try linear("to_k", "key")
        (wv, bv) = try linear("to_v", "value")
        (wo, bo) = try linear("to_out.0", "proj_attn")
    }

    /// x[C, H·W] → [C, H·W]
    func callAsFunction(_ x: [Float], spatial n: Int) -> [Float] {
        let c = channels
        precondition(x.count == c * n, "attention input size")
        var t = x
        norm(&t, spatial: n)
        // Projections in channel-major form: qT[C, N] = Wq[C, C] · t[C, N] + bq.
        let qT = project(t, weight: wq, bias: bq, n: n)
        let kT = project(t, weight: wk, bias: bk, n: n)
        let vT = project(t, weight: wv, bias: bv, n: n)
        t = []
        let scale = 1 / Float(c).squareRoot()
        // At most `queryChunk` queries and at most `VAEAttention.scoreFloats` scores per block.
        let chunk = max(1, min(queryChunk, n, VAEAttention.scoreFloats / n))
        var o = [Float](repeating: 0, count: n * c)  // tokens[N, C]
        var scores = [Float](repeating: 0, count: chunk * n)
        var q0 = 0
        while q0 < n {
            let rows = min(chunk, n - q0)
            qT.withUnsafeBufferPointer { qp in
                kT.withUnsafeBufferPointer { kp in
                    scores.withUnsafeMutableBufferPointer { sp in
                        // scores[rows, N] = scale · qT[:, q0..<q0+rows]ᵀ · kT
                        Kernels.gemm(transA: true, transB: false, m: rows, n: n, k: c, alpha: scale,
                                     a: qp.baseAddress! + q0, lda: n, b: kp.baseAddress!, ldb: n,
                                     beta: 0, c: sp.baseAddress!, ldc: n)
                    }
                }
            }
            Kernels.softmax(&scores, rows: rows, dim: n)  // only the first `rows` rows
            scores.withUnsafeBufferPointer { sp in
                vT.withUnsafeBufferPointer { vp in
                    o.withUnsafeMutableBufferPointer { op in
                        // o[q0..<q0+rows, C] = scores[rows, N] · vT[C, N]ᵀ
                        Kernels.gemm(transA: false, transB: true, m: rows, n: c, k: n,
                                     a: sp.baseAddress!, lda: n, b: vp.baseAddress!, ldb: n,
                                     beta: 0, c: op.baseAddress! + q0 * c, ldc: c)
                    }
                }
            }
            q0 += rows
        }
        // out[C, N] = Wo · oᵀ + bo + x
        var y = x
        y.withUnsafeMutableBufferPointer { yp in
            for ch in 0..<c {
                let b = bo[ch]
                for i in 0..<n { yp[ch * n + i] += b }
            }
            wo.withUnsafeBufferPointer { wp in
                o.withUnsafeBufferPointer { op in
                    Kernels.gemm(transA: false, transB: true, m: c, n: n, k: c,
                                 a: wp.baseAddress!, lda: c, b: op.baseAddress!, ldb: c,
                                 beta: 1, c: yp.baseAddress!, ldc: n)
                }
            }
        }
        return y
    }

    /// W[C, C] · t[C, N] + b, channel-major.
    private func project(_ t: [Float], weight: [Float], bias: [Float], n: Int) -> [Float] {
        let c = channels
        var y = [Float](repeating: 0, count: c * n)
        y.withUnsafeMutableBufferPointer { yp in
            for ch in 0..<c {
                let b = bias[ch]
                for i in 0..<n { yp[ch * n + i] = b }
            }
            weight.withUnsafeBufferPointer { wp in
                t.withUnsafeBufferPointer { tp in
                    Kernels.gemm(transA: false, transB: false, m: c, n: n, k: c,
                                 a: wp.baseAddress!, lda: c, b: tp.baseAddress!, ldb: n,
                                 beta: 1, c: yp.baseAddress!, ldc: n)
                }
            }
        }
        return y
    }
}
