import PixconvCore
import PixconvQuant

/// T5 (v1.1) encoder stack in f32 (T: `modeling_t5.py` — `T5EncoderModel` → `T5Stack`, `T5Block`,
/// `T5LayerSelfAttention`, `T5Attention`, `T5LayerFF`, `T5DenseGatedActDense` / `T5DenseActDense`,
/// `T5LayerNorm`); output = `last_hidden_state`.
///
/// Weights stay in their stored type inside `Weights` (mmap'd safetensors, a pixconv store, …) and
/// are widened to f32 one block at a time while that block runs, then dropped: the real
/// T5-v1.1-XXL is ~19 GB in f32, so widening everything at init would not fit in memory. Only the
/// embedding rows of the prompt's ids, the small relative-attention table and the norms' weights
/// are widened outside a block. `encode(batch:)` runs several prompts through each block while it is
/// widened (PixArt encodes the negative and the positive prompt), so weights are widened once per call.
///
/// Keys: `shared.weight` or `encoder.embed_tokens.weight` (vocab, d_model);
/// `encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight`;
/// `encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight` (buckets, heads);
/// `encoder.block.{i}.layer.{0,1}.layer_norm.weight`;
/// `encoder.block.{i}.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight` (gated) or `{wi,wo}.weight`;
/// `encoder.final_layer_norm.weight`.
public final class T5Encoder: @unchecked Sendable {  // immutable after init
    public let config: T5Config
    private let weights: Weights
    private let embeddingName: String
    private let gated: Bool
    private let activation: T5Config.Activation
    /// (buckets, heads), from block 0.
    private let relativeBias: [Float]
    private let eps: Float

    /// Checks every tensor's presence and shape (without reading the data) and widens the
    /// relative-attention table. `weights` is the root of the text encoder's tensors.
    public init(config: T5Config, weights: Weights) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        (gated, activation) = try config.feedForward()
        eps = Float(config.layerNormEpsilon)
        let d = config.dModel, inner = config.innerDim, ff = config.dFf
        guard let name = ["shared.weight", "encoder.embed_tokens.weight"].first(where: { weights.has($0) }) else {
            throw RuntimeError.missingTensor(weights.prefix + "shared.weight")
        }
        embeddingName = name
        let embShape = try weights.shape(name)
        guard embShape.count == 2, embShape[1] == d, embShape[0] >= 1 else {
            throw RuntimeError.shapeMismatch(tensor: weights.prefix + name, expected: [config.vocabSize, d], actual: embShape)
        }
        func check(_ w: Weights, _ n: String, _ shape: [Int]) throws {
            let actual = try w.shape(n)
            guard actual == shape else { throw RuntimeError.shapeMismatch(tensor: w.prefix + n, expected: shape, actual: actual) }
        }
        for i in 0..<config.numLayers {
            let block = weights.scope("encoder.block.\(i).layer")
            let attn = block.scope("0.SelfAttention")
            for p in ["q", "k", "v"] { try check(attn, "\(p).weight", [inner, d]) }
            try check(attn, "o.weight", [d, inner])
            try check(block, "0.layer_norm.weight", [d])
            try check(block, "1.layer_norm.weight", [d])
            let dense = block.scope("1.DenseReluDense")
            if gated {
                try check(dense, "wi_0.weight", [ff, d])
                try check(dense, "wi_1.weight", [ff, d])
            } else {
                try check(dense, "wi.weight", [ff, d])
            }
            try check(dense, "wo.weight", [d, ff])
        }
        try check(weights, "encoder.final_layer_norm.weight", [d])
        let tableName = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        relativeBias = config.numLayers > 0
            ? try weights.floats(tableName, shape: [config.relativeAttentionNumBuckets, config.numHeads]) : []
    }

    /// `last_hidden_state` (L, d_model) of one sequence; `mask` is the attention mask (1 = attend).
    public func encode(ids: [Int32], mask: [Int32]) throws -> [Float] {
        try encode(batch: [(ids, mask)])[0]
    }

    /// `last_hidden_state` of each sequence (each (L_b, d_model)); weights are widened once for all.
    public func encode(batch: [(ids: [Int32], mask: [Int32])]) throws -> [[Float]] {
        let d = config.dModel, inner = config.innerDim, ff = config.dFf, heads = config.numHeads
        var offsets: [Int] = [0]  // row offset of each sequence in the stacked hidden states
        for (ids, mask) in batch {
            guard ids.count == mask.count else {
                throw RuntimeError.invalidInput("t5: \(ids.count) ids but \(mask.count) mask values")
            }
            guard !ids.isEmpty else { throw RuntimeError.invalidInput("t5: empty id sequence") }
            offsets.append(offsets[offsets.count - 1] + ids.count)
        }
        let rows = offsets[offsets.count - 1]
        var h = try embed(batch.flatMap { $0.ids })  // (rows, d)
        let biases = config.numLayers == 0 ? [] : batch.map { seq in
            T5Layers.positionBias(length: seq.ids.count, mask: seq.mask, table: relativeBias, heads: heads,
                                  numBuckets: config.relativeAttentionNumBuckets,
                                  maxDistance: config.relativeAttentionMaxDistance)
        }

        for i in 0..<config.numLayers {
            let block = weights.scope("encoder.block.\(i).layer")
            // self-attention sub-layer: h += o(attn(RMSNorm(h)))
            let attn = block.scope("0.SelfAttention")
            let n = T5Layers.rmsNorm(h, rows: rows, dim: d, weight: try block.floats("0.layer_norm.weight"), eps: eps)
            let q = Kernels.linear(n, rows: rows, inFeatures: d, weight: try attn.floats("q.weight"), outFeatures: inner, bias: nil)
            let k = Kernels.linear(n, rows: rows, inFeatures: d, weight: try attn.floats("k.weight"), outFeatures: inner, bias: nil)
            let v = Kernels.linear(n, rows: rows, inFeatures: d, weight: try attn.floats("v.weight"), outFeatures: inner, bias: nil)
            var context = [Float](repeating: 0, count: rows * inner)
            for (b, bias) in biases.enumerated() {
                let r = offsets[b]..<offsets[b + 1]
                let out = T5Layers.attention(q: slice(q, r, inner), k: slice(k, r, inner), v: slice(v, r, inner),
                                             bias: bias, length: r.count, heads: heads, dKv: config.dKv)
                context.replaceSubrange((r.lowerBound * inner)..<(r.upperBound * inner), with: out)
            }
            let o = Kernels.linear(context, rows: rows, inFeatures: inner, weight: try attn.floats("o.weight"), outFeatures: d, bias: nil)
            add(&h, o)

            // feed-forward sub-layer: h += wo(act(wi_0·n) ⊙ wi_1·n)   or   wo(act(wi·n))
            let dense = block.scope("1.DenseReluDense")
            let n2 = T5Layers.rmsNorm(h, rows: rows, dim: d, weight: try block.floats("1.layer_norm.weight"), eps: eps)
            var hidden: [Float]
            if gated {
                hidden = Kernels.linear(n2, rows: rows, inFeatures: d, weight: try dense.floats("wi_0.weight"), outFeatures: ff, bias: nil)
                T5Layers.activate(&hidden, activation)
                let linear = Kernels.linear(n2, rows: rows, inFeatures: d, weight: try dense.floats("wi_1.weight"), outFeatures: ff, bias: nil)
                for t in hidden.indices { hidden[t] *= linear[t] }
            } else {
                hidden = Kernels.linear(n2, rows: rows, inFeatures: d, weight: try dense.floats("wi.weight"), outFeatures: ff, bias: nil)
                T5Layers.activate(&hidden, activation)
            }
            let f = Kernels.linear(hidden, rows: rows, inFeatures: ff, weight: try dense.floats("wo.weight"), outFeatures: d, bias: nil)
            add(&h, f)
        }
        h = T5Layers.rmsNorm(h, rows: rows, dim: d, weight: try weights.floats("encoder.final_layer_norm.weight"), eps: eps)
        return (0..<batch.count).map { b in slice(h, offsets[b]..<offsets[b + 1], d) }
    }

    /// Rows `ids` of the embedding table, widened row by row (no √d scaling).
    private func embed(_ ids: [Int32]) throws -> [Float] {
        let d = config.dModel
        let data = try weights.source.data(for: weights.prefix + embeddingName)
        let vocab = data.info.shape[0]
        for id in ids where id < 0 || Int(id) >= vocab {
            throw RuntimeError.invalidInput("t5: token id \(id) outside the embedding table (\(vocab) rows)")
        }
        var out = [Float](repeating: 0, count: ids.count * d)
        if let rowBytes = data.info.dtype.byteCount(elements: d) {
            try data.withBytes { bytes in
                try out.withUnsafeMutableBufferPointer { dst in
                    for (r, id) in ids.enumerated() {
                        let start = Int(id) * rowBytes
                        try dequantize(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + rowBytes)]),
                                       dtype: data.info.dtype, count: d,
                                       into: UnsafeMutableBufferPointer(rebasing: dst[(r * d)..<((r + 1) * d)]),
                                       tensor: data.info.name)
                    }
                }
            }
        } else {  // rows that are not whole quantization blocks: widen the whole table
            let table = try dequantizeToFloat(data)
            for (r, id) in ids.enumerated() {
                out.replaceSubrange((r * d)..<((r + 1) * d), with: table[(Int(id) * d)..<((Int(id) + 1) * d)])
            }
        }
        return out
    }

    private func slice(_ x: [Float], _ rows: Range<Int>, _ width: Int) -> [Float] {
        Array(x[(rows.lowerBound * width)..<(rows.upperBound * width)])
    }

    private func add(_ h: inout [Float], _ x: [Float]) {
        h.withUnsafeMutableBufferPointer { p in for t in p.indices { p[t] += x[t] } }
    }
}
