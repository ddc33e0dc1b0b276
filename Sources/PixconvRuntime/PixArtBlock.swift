import Foundation

/// One PixArt block: `BasicTransformerBlock` with norm_type "ada_norm_single"
/// (D: `attention.py::BasicTransformerBlock.forward`; P: `PixArt_blocks.py::PixArtMSBlock`).
///
/// mod = scale_shift_table + t6 ⇒ (shift, scale, gate)_msa, (shift, scale, gate)_mlp;
/// x += gate_msa · attn1(LN(x)·(1+scale_msa) + shift_msa);
/// x += attn2(x, caption, mask bias)            — no norm, no gate;
/// x += gate_mlp · FF(LN(x)·(1+scale_mlp) + shift_mlp), FF = Linear → GELU(tanh) → Linear.
/// The weights are widened to f32 when the block is loaded and dropped with it.
struct PixArtBlock {
    let table: [Float]  // (6, D)
    let attn1: PixArtAttentionWeights
    let attn2: PixArtAttentionWeights
    let ff1: [Float], ff1Bias: [Float]  // (F, D)
    let ff2: [Float], ff2Bias: [Float]  // (D, F)
    let ffInner: Int

    init(_ w: Weights, dim: Int, crossDim: Int) throws {
        table = try w.floats("scale_shift_table", shape: [6, dim])
        attn1 = try PixArtAttentionWeights(w.scope("attn1"), dim: dim, keyInput: dim)
        attn2 = try PixArtAttentionWeights(w.scope("attn2"), dim: dim, keyInput: crossDim)
        let ffShape = try w.shape("ff.net.0.proj.weight")
        guard ffShape.count == 2, ffShape[1] == dim, ffShape[0] > 0, ffShape[0] <= 1 << 20 else {
            throw RuntimeError.shapeMismatch(tensor: w.prefix + "ff.net.0.proj.weight", expected: [4 * dim, dim], actual: ffShape)
        }
        ffInner = ffShape[0]
        ff1 = try w.floats("ff.net.0.proj.weight", shape: [ffInner, dim])
        ff1Bias = try w.floats("ff.net.0.proj.bias", shape: [ffInner])
        ff2 = try w.floats("ff.net.2.weight", shape: [dim, ffInner])
        ff2Bias = try w.floats("ff.net.2.bias", shape: [dim])
    }

    /// x (B, N, D) in place; t6 (B, 6D); caption (B, L, crossDim); captionBias (B, L).
    func forward(_ x: inout [Float], batch: Int, tokens n: Int, t6: [Float], caption: [Float], captionLength l: Int,
                 captionBias: [Float], heads: Int, headDim: Int, eps: Float) {
        let dim = heads * headDim
        // mod[b, r, :] = table[r, :] + t6[b, r·D ..< (r+1)·D]
        var mod = [Float](repeating: 0, count: batch * 6 * dim)
        for b in 0..<batch {
            for i in 0..<(6 * dim) { mod[b * 6 * dim + i] = table[i] + t6[b * 6 * dim + i] }
        }
        // self-attention
        var nrm = x
        Kernels.layerNorm(&nrm, rows: batch * n, dim: dim, eps: eps)
        modulate(&nrm, mod: mod, shiftRow: 0, scaleRow: 1, batch: batch, tokens: n, dim: dim)
        let a1 = attn1(nrm, context: nrm, batch: batch, queries: n, keys: n, heads: heads, headDim: headDim, keyBias: nil)
        gatedAdd(&x, a1, mod: mod, gateRow: 2, batch: batch, tokens: n, dim: dim)

        // cross-attention on the un-normalised stream, ungated
        let a2 = attn2(x, context: caption, batch: batch, queries: n, keys: l, heads: heads, headDim: headDim,
                       keyBias: captionBias)
        for i in x.indices { x[i] = a2[i] + x[i] }

        // feed-forward
        nrm = x
        Kernels.layerNorm(&nrm, rows: batch * n, dim: dim, eps: eps)
        modulate(&nrm, mod: mod, shiftRow: 3, scaleRow: 4, batch: batch, tokens: n, dim: dim)
        var hidden = Kernels.linear(nrm, rows: batch * n, inFeatures: dim, weight: ff1, outFeatures: ffInner, bias: ff1Bias)
        Kernels.geluTanh(&hidden)
        let f = Kernels.linear(hidden, rows: batch * n, inFeatures: ffInner, weight: ff2, outFeatures: dim, bias: ff2Bias)
        gatedAdd(&x, f, mod: mod, gateRow: 5, batch: batch, tokens: n, dim: dim)
    }

    /// v = v·(1 + scale) + shift, per batch row of `mod`.
    private func modulate(_ v: inout [Float], mod: [Float], shiftRow: Int, scaleRow: Int, batch: Int, tokens: Int, dim: Int) {
        v.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                let sh = (b * 6 + shiftRow) * dim, sc = (b * 6 + scaleRow) * dim
                for t in 0..<tokens {
                    let base = (b * tokens + t) * dim
                    for c in 0..<dim { p[base + c] = p[base + c] * (1 + mod[sc + c]) + mod[sh + c] }
                }
            }
        }
    }

    /// x = gate · y + x.
    private func gatedAdd(_ x: inout [Float], _ y: [Float], mod: [Float], gateRow: Int, batch: Int, tokens: Int, dim: Int) {
        x.withUnsafeMutableBufferPointer { p in
            for b in 0..<batch {
                let g = (b * 6 + gateRow) * dim
                for t in 0..<tokens {
                    let base = (b * tokens + t) * dim
                    for c in 0..<dim { p[base + c] = mod[g + c] * y[base + c] + p[base + c] }
                }
            }
        }
    }
}
