import CEngine
import Foundation

/// PixArt-α DiT, diffusers `PixArtTransformer2DModel.forward` (D: `pixart_transformer_2d.py`), float32.
///
/// patch embed + 2-D sin-cos position embedding → adaLN-single conditioning (timestep sinusoid, plus
/// resolution / aspect-ratio sinusoids for 1024 models) → caption projection → N blocks → final
/// modulated LayerNorm with the pre-SiLU condition → proj_out → unpatchify.
///
/// Memory: weights stay in their stored type (views of the store) and are multiplied there by
/// the engine's linear operation; only the patch embedding, tables and biases are f32. The
/// activations live in one `Workspace` reused by every block and step, and what does not change
/// between steps (the caption projection and every block's cross-attention keys and values) is
/// computed once per caption.
public final class PixArtTransformer {
    public let config: PixArtConfig
    public let weights: Weights
    private var blockCache: [Int: PixArtBlock] = [:]
    /// The last position embedding, keyed by its patch grid (h, w).
    private var positionCache: (h: Int, w: Int, values: [Float])?
    /// The caption the cached keys and values belong to, its projection, and per block (K, V).
    /// Both are row-wise, so equal states give equal values whatever the batch split.
    private var captionCache: (states: [Float], caption: [Float], kv: [Int: (k: [Float], v: [Float])])?
    private let workspace = Workspace()

    private struct MLP {  // Linear → act → Linear
        let l1: LinearWeight, l2: LinearWeight

        init(_ w: Weights, inFeatures: Int, hidden: Int, outFeatures: Int) throws {
            l1 = try LinearWeight(w, "linear_1.weight", out: hidden, in: inFeatures, bias: "linear_1.bias")
            l2 = try LinearWeight(w, "linear_2.weight", out: outFeatures, in: hidden, bias: "linear_2.bias")
        }

        func callAsFunction(_ x: [Float], rows: Int, gelu: Bool) -> [Float] {
            var h = l1(x, rows: rows)
            if gelu { Kernels.geluTanh(&h) } else { Kernels.silu(&h) }
            return l2(h, rows: rows)
        }
    }

    private let dim: Int, crossDim: Int, outChannels: Int
    private let patchWeight: [Float], patchBias: [Float]
    private let timestepEmbedder: MLP
    private let resolutionEmbedder: MLP?, aspectRatioEmbedder: MLP?
    private let adaLinear: LinearWeight  // (6D, D)
    private let captionProjection: MLP?
    private let finalTable: [Float]  // (2, D): shift, scale
    private let projOut: LinearWeight

    public init(config: PixArtConfig, weights: Weights) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        let d = config.innerDim, p = config.patchSize
        dim = d
        crossDim = config.crossAttentionDim ?? d
        outChannels = config.resolvedOutChannels
        patchWeight = try weights.floats("pos_embed.proj.weight", shape: [d, config.inChannels, p, p])
        patchBias = try weights.floats("pos_embed.proj.bias", shape: [d])
        let emb = weights.scope("adaln_single").scope("emb")
        timestepEmbedder = try MLP(emb.scope("timestep_embedder"), inFeatures: 256, hidden: d, outFeatures: d)
        if config.resolvedUseAdditionalConditions {
            resolutionEmbedder = try MLP(emb.scope("resolution_embedder"), inFeatures: 256, hidden: d / 3, outFeatures: d / 3)
            aspectRatioEmbedder = try MLP(emb.scope("aspect_ratio_embedder"), inFeatures: 256, hidden: d / 3, outFeatures: d / 3)
        } else {
            resolutionEmbedder = nil
            aspectRatioEmbedder = nil
        }
        adaLinear = try LinearWeight(weights, "adaln_single.linear.weight", out: 6 * d, in: d, bias: "adaln_single.linear.bias")
        if let c = config.captionChannels {
            captionProjection = try MLP(weights.scope("caption_projection"), inFeatures: c, hidden: d, outFeatures: d)
            guard crossDim == d else {
                throw RuntimeError.invalidInput("transformer config: cross_attention_dim \(crossDim) differs from inner dim \(d)")
            }
        } else {
            captionProjection = nil
        }
        finalTable = try weights.floats("scale_shift_table", shape: [2, d])
        projOut = try LinearWeight(weights, "proj_out.weight", out: p * p * outChannels, in: d, bias: "proj_out.bias")
        for i in 0..<config.numLayers where !weights.has("transformer_blocks.\(i).scale_shift_table") {
            throw RuntimeError.missingTensor(weights.prefix + "transformer_blocks.\(i).scale_shift_table")
        }
    }

    private func block(_ i: Int) throws -> PixArtBlock {
        if let b = blockCache[i] { return b }
        let b = try PixArtBlock(weights.scope("transformer_blocks").scope("\(i)"), dim: dim, crossDim: crossDim)
        blockCache[i] = b  // views and biases only: cheap to keep
        return b
    }

    /// The conditioning of `adaln_single`: (cond (B, D) = embedded_timestep, t6 (B, 6D)).
    func condition(timesteps: [Float], resolution: [Float]?, aspectRatio: [Float]?) throws -> (cond: [Float], t6: [Float]) {
        let batch = timesteps.count
        var cond = timestepEmbedder(PixArtEmbeddings.timestepSinusoid(timesteps), rows: batch, gelu: false)
        if let resolutionEmbedder, let aspectRatioEmbedder {
            guard let resolution, resolution.count == 2 * batch, let aspectRatio, aspectRatio.count == batch else {
                throw RuntimeError.invalidInput("this transformer needs resolution (B, 2) and aspect ratio (B) conditions")
            }
            let res = resolutionEmbedder(PixArtEmbeddings.timestepSinusoid(resolution), rows: 2 * batch, gelu: false)
            let ar = aspectRatioEmbedder(PixArtEmbeddings.timestepSinusoid(aspectRatio), rows: batch, gelu: false)
            let third = dim / 3
            for b in 0..<batch {
                for c in 0..<(2 * third) { cond[b * dim + c] += res[b * 2 * third + c] }
                for c in 0..<third { cond[b * dim + 2 * third + c] += ar[b * third + c] }
            }
        }
        var act = cond
        Kernels.silu(&act)
        let t6 = adaLinear(act, rows: batch)
        return (cond, t6)
    }

    /// One denoiser call. latents (B, in, H, W); timesteps (B); encoderHiddenStates (B, L, caption_channels);
    /// encoderMask (B, L) of 0/1; resolution (B, 2) as (height, width) in pixels and aspectRatio (B) as
    /// height/width, required when the model uses additional conditions. Returns (B, out, H, W).
    public func forward(latents: [Float], batch: Int, height: Int, width: Int, timesteps: [Float],
                        encoderHiddenStates: [Float], encoderMask: [Float], textLength: Int,
                        resolution: [Float]?, aspectRatio: [Float]?) throws -> [Float] {
        let p = config.patchSize, d = dim
        let heads = config.numAttentionHeads, headDim = config.attentionHeadDim
        func fail(_ s: String) -> RuntimeError { RuntimeError.invalidInput("transformer input: " + s) }
        guard batch >= 1, height >= p, width >= p, height % p == 0, width % p == 0, textLength >= 1 else {
            throw fail("batch \(batch), latent \(height)×\(width), text length \(textLength) (patch \(p))")
        }
        let h = height / p, w = width / p
        let n = h * w
        let encoderWidth = config.captionChannels ?? crossDim
        guard let latentCount = pixartProduct([batch, config.inChannels, height, width]),
              let textCount = pixartProduct([batch, textLength, encoderWidth]),
              pixartProduct([batch, n, max(d, 4 * d)]) != nil
        else { throw fail("sizes overflow") }
        guard latents.count == latentCount else { throw fail("latents have \(latents.count) values, expected \(latentCount)") }
        guard timesteps.count == batch else { throw fail("\(timesteps.count) timesteps for batch \(batch)") }
        guard encoderHiddenStates.count == textCount else {
            throw fail("encoder states have \(encoderHiddenStates.count) values, expected \(textCount)")
        }
        guard encoderMask.count == batch * textLength else { throw fail("mask has \(encoderMask.count) values") }

        // 1. patch embedding + position embedding
        var x = PixArtEmbeddings.patchEmbed(latents, batch: batch, channels: config.inChannels, height: height, width: width,
                                            patch: p, weight: patchWeight, bias: patchBias, dim: d)
        let pos: [Float]
        if let cached = positionCache, cached.h == h, cached.w == w {
            pos = cached.values
        } else {
            pos = PixArtEmbeddings.positionEmbedding(dim: d, height: h, width: w, baseSize: config.baseSize,
                                                     interpolationScale: config.resolvedInterpolationScale)
            positionCache = (h, w, pos)
        }
        for b in 0..<batch {
            for i in 0..<(n * d) { x[b * n * d + i] += pos[i] }
        }
        // 2. conditioning
        let (cond, t6) = try condition(timesteps: timesteps, resolution: resolution, aspectRatio: aspectRatio)
        // 3. caption projection and mask bias (the projection, like the blocks' caption keys and
        //    values, is computed once per caption and reused by every step)
        var cache = captionCache.flatMap { $0.states == encoderHiddenStates ? $0 : nil }
            ?? (states: encoderHiddenStates,
                caption: captionProjection.map { $0(encoderHiddenStates, rows: batch * textLength, gelu: true) }
                    ?? encoderHiddenStates,
                kv: [:])
        let bias = encoderMask.map { (1 - $0) * Float(-10000.0) }
        // 4. blocks
        let eps = Float(config.normEps)
        try x.withUnsafeMutableBufferPointer { xp in
            for i in 0..<config.numLayers {
                let blk = try block(i)
                // first pass over a (possibly cold) store: the next block is read while this one computes
                if cache.kv[i] == nil, i + 1 < config.numLayers {
                    weights.scope("transformer_blocks").scope("\(i + 1)").prefetchPages()
                }
                let kv = cache.kv[i] ?? blk.captionKeysValues(cache.caption, rows: batch * textLength)
                cache.kv[i] = kv
                blk.forward(xp.baseAddress!, batch: batch, tokens: n, t6: t6, captionKV: kv, captionLength: textLength,
                            captionBias: bias, heads: heads, headDim: headDim, eps: eps, workspace: workspace)
            }
        }
        captionCache = cache
        // 5. final layer: LN · (1 + scale) + shift, with (shift, scale) = table + cond (pre-SiLU)
        var shiftScale = [Float](repeating: 0, count: batch * 2 * d)
        for b in 0..<batch {
            for c in 0..<d {
                shiftScale[b * 2 * d + c] = finalTable[c] + cond[b * d + c]
                shiftScale[b * 2 * d + d + c] = finalTable[d + c] + cond[b * d + c]
            }
        }
        shiftScale.withUnsafeBufferPointer { sp in
            x.withUnsafeMutableBufferPointer { xp in
                pe_layernorm_modulate(xp.baseAddress!, xp.baseAddress!, Int64(batch * n), Int64(d), eps,
                                      sp.baseAddress!, sp.baseAddress! + d, Int64(n), Int64(2 * d))
            }
        }
        let tokens = projOut(x, rows: batch * n)
        // 6. unpatchify
        return PixArtEmbeddings.unpatchify(tokens, batch: batch, height: h, width: w, patch: p, channels: outChannels)
    }
}

/// Product of sizes, nil on overflow or a negative size.
func pixartProduct(_ sizes: [Int]) -> Int? {
    var r = 1
    for s in sizes {
        guard s >= 0 else { return nil }
        let (v, o) = r.multipliedReportingOverflow(by: s)
        if o { return nil }
        r = v
    }
    return r
}
