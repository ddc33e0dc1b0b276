import Foundation

/// One `attn1`/`attn2` module's f32 weights: to_q, to_k, to_v, to_out.0, all with bias
/// (D: `attention_processor.py::Attention`).
struct PixArtAttentionWeights {
    let q: [Float], qBias: [Float]
    let k: [Float], kBias: [Float]
    let v: [Float], vBias: [Float]
    let out: [Float], outBias: [Float]
    /// Width of the key/value input (D for self-attention, cross_attention_dim for attn2).
    let keyInput: Int

    init(_ w: Weights, dim: Int, keyInput: Int) throws {
        q = try w.floats("to_q.weight", shape: [dim, dim]); qBias = try w.floats("to_q.bias", shape: [dim])
        k = try w.floats("to_k.weight", shape: [dim, keyInput]); kBias = try w.floats("to_k.bias", shape: [dim])
        v = try w.floats("to_v.weight", shape: [dim, keyInput]); vBias = try w.floats("to_v.bias", shape: [dim])
        out = try w.floats("to_out.0.weight", shape: [dim, dim]); outBias = try w.floats("to_out.0.bias", shape: [dim])
        self.keyInput = keyInput
    }

    /// x (B, Nq, D) attends to context (B, Nk, keyInput); → (B, Nq, D).
    func callAsFunction(_ x: [Float], context: [Float], batch: Int, queries nq: Int, keys nk: Int,
                        heads: Int, headDim: Int, keyBias: [Float]?) -> [Float] {
        let dim = heads * headDim
        let qs = Kernels.linear(x, rows: batch * nq, inFeatures: dim, weight: q, outFeatures: dim, bias: qBias)
        let ks = Kernels.linear(context, rows: batch * nk, inFeatures: keyInput, weight: k, outFeatures: dim, bias: kBias)
        let vs = Kernels.linear(context, rows: batch * nk, inFeatures: keyInput, weight: v, outFeatures: dim, bias: vBias)
        let a = Attention.attention(q: qs, k: ks, v: vs, batch: batch, queries: nq, keys: nk,
                                    heads: heads, headDim: headDim, keyBias: keyBias)
        return Kernels.linear(a, rows: batch * nq, inFeatures: dim, weight: out, outFeatures: dim, bias: outBias)
    }
}
