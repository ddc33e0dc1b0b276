import CEngine
import Foundation

/// One PixArt block: `BasicTransformerBlock` with norm_type "ada_norm_single"
/// (D: `attention.py::BasicTransformerBlock.forward`; P: `PixArt_blocks.py::PixArtMSBlock`).
///
/// mod = scale_shift_table + t6 ⇒ (shift, scale, gate)_msa, (shift, scale, gate)_mlp;
/// x += gate_msa · attn1(LN(x)·(1+scale_msa) + shift_msa);
/// x += attn2(x, caption, mask bias)            — no norm, no gate;
/// x += gate_mlp · FF(LN(x)·(1+scale_mlp) + shift_mlp), FF = Linear → GELU(tanh) → Linear.
/// The weights stay in their stored type (views of the store); only the table and biases are f32.
struct PixArtBlock {
    let table: [Float]  // (6, D)
    let attn1: PixArtAttentionWeights
    let attn2: PixArtAttentionWeights
    let ff1: LinearWeight  // (F, D)
    let ff2: LinearWeight  // (D, F)
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
        ff1 = try LinearWeight(w, "ff.net.0.proj.weight", out: ffInner, in: dim, bias: "ff.net.0.proj.bias")
        ff2 = try LinearWeight(w, "ff.net.2.weight", out: dim, in: ffInner, bias: "ff.net.2.bias")
    }

    /// The cross-attention keys and values of the caption (B·L, D) each: they do not change
    /// between steps, so the transformer computes them once per caption.
    func captionKeysValues(_ caption: [Float], rows: Int) -> (k: [Float], v: [Float]) {
        (attn2.k(caption, rows: rows), attn2.v(caption, rows: rows))
    }

    /// x (B·N, D) in place; t6 (B, 6D); captionKV from `captionKeysValues` (B·L, D); captionBias (B, L).
    func forward(_ x: UnsafeMutablePointer<Float>, batch: Int, tokens n: Int, t6: [Float],
                 captionKV: (k: [Float], v: [Float]), captionLength l: Int, captionBias: [Float],
                 heads: Int, headDim: Int, eps: Float, workspace ws: Workspace) {
        let dim = heads * headDim, rows = batch * n
        // mod[b, r, :] = table[r, :] + t6[b, r·D ..< (r+1)·D]
        var mod = [Float](repeating: 0, count: batch * 6 * dim)
        for b in 0..<batch {
            for i in 0..<(6 * dim) { mod[b * 6 * dim + i] = table[i] + t6[b * 6 * dim + i] }
        }
        let nrm = ws.buffer("nrm", count: rows * dim)
        let q = ws.buffer("q", count: rows * dim), k = ws.buffer("k", count: rows * dim)
        let v = ws.buffer("v", count: rows * dim), att = ws.buffer("att", count: rows * dim)
        let o = ws.buffer("o", count: rows * dim)
        let hidden = ws.buffer("hidden", count: rows * ffInner)
        let scale = Float(1 / Double(headDim).squareRoot())
        // Attention follows the arithmetic of the weights: bf16 products for int8 and bf16 stores
        // (their linear layers already round activations as coarsely), f32 for f32 and f16 stores.
        let lowPrecision = Engine.compute == .native && ["q8_0", "q4_0", "bf16"].contains(attn1.q.typeName)
        mod.withUnsafeBufferPointer { mp in
            let m = mp.baseAddress!
            let stride = Int64(6 * dim)
            // self-attention
            pe_layernorm_modulate(x, nrm, Int64(rows), Int64(dim), eps, m, m + dim, Int64(n), stride)
            LinearWeight.apply([attn1.q, attn1.k, attn1.v], nrm, rows: rows, into: [q, k, v])
            Attention.fused(q: q, k: k, v: v, out: att, batch: batch, queries: n, keys: n, heads: heads, headDim: headDim,
                            scale: scale, keyBias: nil, bias: nil, bf16: lowPrecision)
            attn1.out.apply(att, rows: rows, into: o)
            pe_gated_add(x, o, Int64(rows), Int64(dim), m + 2 * dim, Int64(n), stride)

            // cross-attention on the un-normalised stream, ungated: x += to_out(attn(to_q(x), K, V))
            attn2.q.apply(x, rows: rows, into: q)
            captionKV.k.withUnsafeBufferPointer { kp in
                captionKV.v.withUnsafeBufferPointer { vp in
                    captionBias.withUnsafeBufferPointer { bp in
                        Attention.fused(q: q, k: kp.baseAddress!, v: vp.baseAddress!, out: att, batch: batch, queries: n,
                                        keys: l, heads: heads, headDim: headDim, scale: scale,
                                        keyBias: bp.baseAddress, bias: nil, bf16: lowPrecision)
                    }
                }
            }
            attn2.out.apply(att, rows: rows, into: x, accumulate: true)

            // feed-forward
            pe_layernorm_modulate(x, nrm, Int64(rows), Int64(dim), eps, m + 3 * dim, m + 4 * dim, Int64(n), stride)
            ff1.apply(nrm, rows: rows, into: hidden)
            pe_gelu_tanh(hidden, Int64(rows * ffInner))
            ff2.apply(hidden, rows: rows, into: o)
            pe_gated_add(x, o, Int64(rows), Int64(dim), m + 5 * dim, Int64(n), stride)
        }
    }
}
