import CEngine
import PixconvCore
import PixconvQuant

/// T5 (v1.1) encoder stack in f32 (T: `modeling_t5.py` — `T5EncoderModel` → `T5Stack`, `T5Block`,
/// `T5LayerSelfAttention`, `T5Attention`, `T5LayerFF`, `T5DenseGatedActDense` / `T5DenseActDense`,
/// `T5LayerNorm`); output = `last_hidden_state`.
///
/// Weights stay in their stored type (mmap'd safetensors, a pixconv store, …) and are multiplied
/// there by the engine's linear operation: a layer is never widened to f32 (a T5-XXL layer is
/// 193 M parameters). After each layer its mapped pages are dropped, so the whole model is never
/// resident at once. Only the embedding rows of the prompt's ids, the small relative-attention
/// table and the norms' weights are widened. `encode(batch:)` runs several prompts through each
/// layer together (PixArt encodes the negative and the positive prompt), so each layer's weights
/// are read once per call.
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

    /// `encode(batch:)` on the attended tokens only, for a consumer that masks the padding out again.
    /// A sequence whose mask is ones then zeros (the tokenizer's right padding) is encoded as its
    /// first n tokens, and its padding rows come back as zeros; any other mask is encoded whole.
    ///
    /// The attended rows are those of the whole encode: T5's self-attention gives the padding keys
    /// a −FLT_MAX bias (weight exactly 0), its relative position bias depends on j − i only, and every
    /// other operation works row by row; rounding may differ in the last bits, as between two batch
    /// sizes. The padding rows differ, so this is only for consumers that mask them, as PixArt's
    /// cross-attention does (bias −10000: weight exactly 0 in f32). The padding is most of a prompt
    /// (120 tokens for PixArt-α, 300 for Σ), so this skips most of T5's work.
    public func encodeAttended(batch: [(ids: [Int32], mask: [Int32])]) throws -> [[Float]] {
        let d = config.dModel
        let lengths: [Int] = batch.map { seq in
            let n = seq.mask.prefix { $0 != 0 }.count
            let prefixOnly = n > 0 && seq.mask.count == seq.ids.count && seq.mask[n...].allSatisfy { $0 == 0 }
            return prefixOnly ? n : seq.ids.count
        }
        let trimmed = zip(batch, lengths).map { seq, n in (ids: Array(seq.ids.prefix(n)), mask: Array(seq.mask.prefix(n))) }
        let hidden = try encode(batch: trimmed)
        return zip(hidden, batch).map { rows, seq in
            rows + [Float](repeating: 0, count: (seq.ids.count * d) - rows.count)
        }
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
        let ws = Workspace()
        var h = try embed(batch.flatMap { $0.ids })  // (rows, d)
        let biases = config.numLayers == 0 ? [] : batch.map { seq in
            T5Layers.positionBias(length: seq.ids.count, mask: seq.mask, table: relativeBias, heads: heads,
                                  numBuckets: config.relativeAttentionNumBuckets,
                                  maxDistance: config.relativeAttentionMaxDistance)
        }

        let q = ws.buffer("q", count: rows * inner), k = ws.buffer("k", count: rows * inner)
        let v = ws.buffer("v", count: rows * inner), context = ws.buffer("context", count: rows * inner)
        let n = ws.buffer("norm", count: rows * d)
        let hidden = ws.buffer("hidden", count: rows * ff), linear = ws.buffer("linear", count: rows * ff)
        try h.withUnsafeMutableBufferPointer { hb in
            let hp = hb.baseAddress!
            for i in 0..<config.numLayers {
                let layer = weights.scope("encoder.block.\(i)")
                // the next layer's weights are read from disk while this one computes (a cold store)
                if i + 1 < config.numLayers { weights.scope("encoder.block.\(i + 1)").prefetchPages() }
                let block = layer.scope("layer")
                // self-attention sub-layer: h += o(attn(RMSNorm(h)))
                let attn = block.scope("0.SelfAttention")
                try block.floats("0.layer_norm.weight", shape: [d]).withUnsafeBufferPointer { w in
                    pe_rmsnorm(hp, n, Int64(rows), Int64(d), eps, w.baseAddress)
                }
                LinearWeight.apply(try ["q", "k", "v"].map { try LinearWeight(attn, "\($0).weight", out: inner, in: d) },
                                   n, rows: rows, into: [q, k, v])
                for (b, bias) in biases.enumerated() {
                    let r0 = offsets[b], length = offsets[b + 1] - r0
                    bias.withUnsafeBufferPointer { bp in
                        Attention.fused(q: q + r0 * inner, k: k + r0 * inner, v: v + r0 * inner, out: context + r0 * inner,
                                        batch: 1, queries: length, keys: length, heads: heads, headDim: config.dKv,
                                        scale: 1, keyBias: nil, bias: bp.baseAddress)
                    }
                }
                try LinearWeight(attn, "o.weight", out: d, in: inner).apply(context, rows: rows, into: hp, accumulate: true)

                // feed-forward sub-layer: h += wo(act(wi_0·n) ⊙ wi_1·n)   or   wo(act(wi·n))
                let dense = block.scope("1.DenseReluDense")
                try block.floats("1.layer_norm.weight", shape: [d]).withUnsafeBufferPointer { w in
                    pe_rmsnorm(hp, n, Int64(rows), Int64(d), eps, w.baseAddress)
                }
                if gated {
                    LinearWeight.apply([try LinearWeight(dense, "wi_0.weight", out: ff, in: d),
                                        try LinearWeight(dense, "wi_1.weight", out: ff, in: d)],
                                       n, rows: rows, into: [hidden, linear])
                    if activation == .geluNew {
                        pe_gelu_tanh_mul(hidden, linear, Int64(rows * ff))
                    } else {
                        T5Layers.activate(UnsafeMutableBufferPointer(start: hidden, count: rows * ff), activation)
                        for t in 0..<(rows * ff) { hidden[t] *= linear[t] }
                    }
                } else {
                    try LinearWeight(dense, "wi.weight", out: ff, in: d).apply(n, rows: rows, into: hidden)
                    T5Layers.activate(UnsafeMutableBufferPointer(start: hidden, count: rows * ff), activation)
                }
                try LinearWeight(dense, "wo.weight", out: d, in: ff).apply(hidden, rows: rows, into: hp, accumulate: true)
                // this layer is done: its mapped pages need not stay resident (T5-XXL is gigabytes)
                layer.releasePages()
            }
        }
        let finalNorm = try weights.floats("encoder.final_layer_norm.weight", shape: [d])
        h.withUnsafeMutableBufferPointer { hb in
            finalNorm.withUnsafeBufferPointer { pe_rmsnorm(hb.baseAddress!, hb.baseAddress!, Int64(rows), Int64(d), eps, $0.baseAddress) }
        }
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
