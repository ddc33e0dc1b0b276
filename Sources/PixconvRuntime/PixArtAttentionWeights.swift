import Foundation

/// One `attn1`/`attn2` module: to_q, to_k, to_v, to_out.0, all with bias, in their stored types
/// (D: `attention_processor.py::Attention`).
struct PixArtAttentionWeights {
    let q: LinearWeight, k: LinearWeight, v: LinearWeight, out: LinearWeight
    /// Width of the key/value input (D for self-attention, cross_attention_dim for attn2).
    let keyInput: Int

    init(_ w: Weights, dim: Int, keyInput: Int) throws {
        q = try LinearWeight(w, "to_q.weight", out: dim, in: dim, bias: "to_q.bias")
        k = try LinearWeight(w, "to_k.weight", out: dim, in: keyInput, bias: "to_k.bias")
        v = try LinearWeight(w, "to_v.weight", out: dim, in: keyInput, bias: "to_v.bias")
        out = try LinearWeight(w, "to_out.0.weight", out: dim, in: dim, bias: "to_out.0.bias")
        self.keyInput = keyInput
    }
}
