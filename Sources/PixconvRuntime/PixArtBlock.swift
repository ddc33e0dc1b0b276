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

    /// Rows of the row-wise work (query projections, attention outputs, feed-forward) held at a
    /// time: whole batch elements up to this many rows, or equal parts of one batch element when it
    /// has more tokens. A 512² guided step (2 × 1024 tokens) runs as one chunk; a 2048² one holds
    /// 4096-row intermediates instead of 32768-row ones (a 604 MB feed-forward buffer becomes 75 MB);
    /// only x and the self-attention keys and values are held for the whole stream.
    static let chunkRows = 4096

    /// A range of rows of the (B·N, D) stream: `batches` whole batch elements from `batch`, or
    /// `queries` tokens from `token` of the single batch element `batch`.
    struct Chunk {
        let batch: Int, batches: Int, token: Int, queries: Int
        var rows: Int { batches * queries }
        func firstRow(tokens n: Int) -> Int { batch * n + token }
    }

    static func chunks(batch: Int, tokens n: Int, limit: Int = chunkRows) -> [Chunk] {
        if n <= limit {
            let per = max(1, limit / n)
            return stride(from: 0, to: batch, by: per).map { Chunk(batch: $0, batches: min(per, batch - $0), token: 0, queries: n) }
        }
        let parts = (n + limit - 1) / limit, per = (n + parts - 1) / parts
        return (0..<batch).flatMap { b in
            stride(from: 0, to: n, by: per).map { Chunk(batch: b, batches: 1, token: $0, queries: min(per, n - $0)) }
        }
    }

    /// x (B·N, D) in place; t6 (B, 6D); captionKV from `captionKeysValues` (B·L, D); captionBias (B, L).
    func forward(_ x: UnsafeMutablePointer<Float>, batch: Int, tokens n: Int, t6: [Float],
                 captionKV: (k: [Float], v: [Float]), captionLength l: Int, captionBias: [Float],
                 heads: Int, headDim: Int, eps: Float, workspace ws: Workspace, chunkRows limit: Int = PixArtBlock.chunkRows) {
        let dim = heads * headDim, rows = batch * n
        // mod[b, r, :] = table[r, :] + t6[b, r·D ..< (r+1)·D]
        var mod = [Float](repeating: 0, count: batch * 6 * dim)
        for b in 0..<batch {
            for i in 0..<(6 * dim) { mod[b * 6 * dim + i] = table[i] + t6[b * 6 * dim + i] }
        }
        let chunks = PixArtBlock.chunks(batch: batch, tokens: n, limit: limit)
        let most = chunks.map(\.rows).max() ?? rows
        // whole-stream buffers: the self-attention keys and values need every token
        let k = ws.buffer("k", count: rows * dim), v = ws.buffer("v", count: rows * dim)
        // per-chunk buffers
        let nrm = ws.buffer("nrm", count: most * dim)
        let q = ws.buffer("q", count: most * dim)
        let att = ws.buffer("att", count: most * dim), o = ws.buffer("o", count: most * dim)
        let hidden = ws.buffer("hidden", count: most * ffInner)
        let scale = Float(1 / Double(headDim).squareRoot())
        // Attention follows the arithmetic of the weights: bf16 products for int8 and bf16 stores
        // (their linear layers already round activations as coarsely) where bf16 products are
        // faster than FMA on this CPU (`Engine.bf16Pays`), f32 for f32 and f16 stores and elsewhere.
        let lowPrecision = Engine.compute == .native && Engine.bf16Pays && ["q8_0", "q4_0", "bf16"].contains(attn1.q.typeName)
        mod.withUnsafeBufferPointer { mp in
            let m = mp.baseAddress!
            let stride = 6 * dim
            // self-attention: keys and values of every token, then queries chunk by chunk. With
            // several chunks the normalised rows are made twice (for k, v, then for q) instead of
            // being held for the whole stream; a chunk's rows of x change only after its own turn.
            // LN(x)·(1 + scale) + shift of a chunk into nrm, (shift, scale) rows `row`, `row + 1` of mod
            func normalise(_ c: Chunk, row: Int = 0) {
                let mb = m + c.batch * stride + row * dim
                pe_layernorm_modulate(x + c.firstRow(tokens: n) * dim, nrm, Int64(c.rows), Int64(dim), eps, mb, mb + dim,
                                      Int64(c.queries), Int64(stride))
            }
            // x += gate · o over a chunk, the gate row `row` of mod
            func gatedAdd(_ c: Chunk, row: Int) {
                pe_gated_add(x + c.firstRow(tokens: n) * dim, o, Int64(c.rows), Int64(dim), m + c.batch * stride + row * dim,
                             Int64(c.queries), Int64(stride))
            }
            if chunks.count == 1 {
                normalise(chunks[0])
                LinearWeight.apply([attn1.q, attn1.k, attn1.v], nrm, rows: rows, into: [q, k, v])
            } else {
                for c in chunks {
                    let r0 = c.firstRow(tokens: n)
                    normalise(c)
                    LinearWeight.apply([attn1.k, attn1.v], nrm, rows: c.rows, into: [k + r0 * dim, v + r0 * dim])
                }
            }
            for c in chunks {
                if chunks.count > 1 {
                    normalise(c)
                    attn1.q.apply(nrm, rows: c.rows, into: q)
                }
                Attention.fused(q: q, k: k + c.batch * n * dim, v: v + c.batch * n * dim, out: att, batch: c.batches,
                                queries: c.queries, keys: n, heads: heads, headDim: headDim, scale: scale, keyBias: nil,
                                bias: nil, bf16: lowPrecision)
                attn1.out.apply(att, rows: c.rows, into: o)
                gatedAdd(c, row: 2)
            }

            // cross-attention on the un-normalised stream, ungated: x += to_out(attn(to_q(x), K, V))
            captionKV.k.withUnsafeBufferPointer { kp in
                captionKV.v.withUnsafeBufferPointer { vp in
                    captionBias.withUnsafeBufferPointer { bp in
                        for c in chunks {
                            let r0 = c.firstRow(tokens: n)
                            attn2.q.apply(x + r0 * dim, rows: c.rows, into: q)
                            Attention.fused(q: q, k: kp.baseAddress! + c.batch * l * dim, v: vp.baseAddress! + c.batch * l * dim,
                                            out: att, batch: c.batches, queries: c.queries, keys: l, heads: heads,
                                            headDim: headDim, scale: scale, keyBias: bp.baseAddress! + c.batch * l, bias: nil,
                                            bf16: lowPrecision)
                            attn2.out.apply(att, rows: c.rows, into: x + r0 * dim, accumulate: true)
                        }
                    }
                }
            }

            // feed-forward, chunk by chunk
            for c in chunks {
                normalise(c, row: 3)
                ff1.apply(nrm, rows: c.rows, into: hidden)
                pe_gelu_tanh(hidden, Int64(c.rows * ffInner))
                ff2.apply(hidden, rows: c.rows, into: o)
                gatedAdd(c, row: 5)
            }
        }
    }
}
