import Foundation

/// PixArt-α DiT, diffusers `PixArtTransformer2DModel.forward` (D: `pixart_transformer_2d.py`), float32.
///
/// patch embed + 2-D sin-cos position embedding → adaLN-single conditioning (timestep sinusoid, plus
/// resolution / aspect-ratio sinusoids for 1024 models) → caption projection → N blocks → final
/// modulated LayerNorm with the pre-SiLU condition → proj_out → unpatchify.
///
/// Memory: the small global weights are widened to f32 once, at init; each block's weights are
/// widened when the block runs and released after it (set `cacheBlocks` to keep them).
public final class PixArtTransformer {
    public let config: PixArtConfig
    public let weights: Weights
    /// Keep every block's f32 weights after their first use (faster; the whole model then lives in f32).
    public var cacheBlocks = false
    private var blockCache: [Int: PixArtBlock] = [:]
    /// The last position embedding, keyed by its patch grid (h, w).
    private var positionCache: (h: Int, w: Int, values: [Float])?

    private struct MLP {  // Linear → act → Linear
        let w1: [Float], b1: [Float], w2: [Float], b2: [Float]
        let inFeatures: Int, hidden: Int, outFeatures: Int

        init(_ w: Weights, inFeatures: Int, hidden: Int, outFeatures: Int) throws {
            w1 = try w.floats("linear_1.weight", shape: [hidden, inFeatures]); b1 = try w.floats("linear_1.bias", shape: [hidden])
            w2 = try w.floats("linear_2.weight", shape: [outFeatures, hidden]); b2 = try w.floats("linear_2.bias", shape: [outFeatures])
            self.inFeatures = inFeatures; self.hidden = hidden; self.outFeatures = outFeatures
        }

        func callAsFunction(_ x: [Float], rows: Int, gelu: Bool) -> [Float] {
            var h = Kernels.linear(x, rows: rows, inFeatures: inFeatures, weight: w1, outFeatures: hidden, bias: b1)
            if gelu { Kernels.geluTanh(&h) } else { Kernels.silu(&h) }
            return Kernels.linear(h, rows: rows, inFeatures: hidden, weight: w2, outFeatures: outFeatures, bias: b2)
        }
    }

    private let dim: Int, crossDim: Int, outChannels: Int
    private let patchWeight: [Float], patchBias: [Float]
    private let timestepEmbedder: MLP
    private let resolutionEmbedder: MLP?, aspectRatioEmbedder: MLP?
    private let adaLinear: [Float], adaLinearBias: [Float]  // (6D, D)
    private let captionProjection: MLP?
    private let finalTable: [Float]  // (2, D): shift, scale
    private let projOut: [Float], projOutBias: [Float]

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
        adaLinear = try weights.floats("adaln_single.linear.weight", shape: [6 * d, d])
        adaLinearBias = try weights.floats("adaln_single.linear.bias", shape: [6 * d])
        if let c = config.captionChannels {
            captionProjection = try MLP(weights.scope("caption_projection"), inFeatures: c, hidden: d, outFeatures: d)
            guard crossDim == d else {
                throw RuntimeError.invalidInput("transformer config: cross_attention_dim \(crossDim) differs from inner dim \(d)")
            }
        } else {
            captionProjection = nil
        }
        finalTable = try weights.floats("scale_shift_table", shape: [2, d])
        projOut = try weights.floats("proj_out.weight", shape: [p * p * outChannels, d])
        projOutBias = try weights.floats("proj_out.bias", shape: [p * p * outChannels])
        for i in 0..<config.numLayers where !weights.has("transformer_blocks.\(i).scale_shift_table") {
            throw RuntimeError.missingTensor(weights.prefix + "transformer_blocks.\(i).scale_shift_table")
        }
    }

    private func block(_ i: Int) throws -> PixArtBlock {
        if let b = blockCache[i] { return b }
        let b = try PixArtBlock(weights.scope("transformer_blocks").scope("\(i)"), dim: dim, crossDim: crossDim)
        if cacheBlocks { blockCache[i] = b }
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
        let t6 = Kernels.linear(act, rows: batch, inFeatures: dim, weight: adaLinear, outFeatures: 6 * dim, bias: adaLinearBias)
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
        // 3. caption projection and mask bias
        let caption = captionProjection.map { $0(encoderHiddenStates, rows: batch * textLength, gelu: true) }
            ?? encoderHiddenStates
        let bias = encoderMask.map { (1 - $0) * Float(-10000.0) }
        // 4. blocks
        let eps = Float(config.normEps)
        for i in 0..<config.numLayers {
            try block(i).forward(&x, batch: batch, tokens: n, t6: t6, caption: caption, captionLength: textLength,
                                 captionBias: bias, heads: heads, headDim: headDim, eps: eps)
        }
        // 5. final layer: LN · (1 + scale) + shift, with (shift, scale) = table + cond (pre-SiLU)
        Kernels.layerNorm(&x, rows: batch * n, dim: d, eps: eps)
        for b in 0..<batch {
            for t in 0..<n {
                let base = (b * n + t) * d
                for c in 0..<d {
                    let shift = finalTable[c] + cond[b * d + c]
                    let scale = finalTable[d + c] + cond[b * d + c]
                    x[base + c] = x[base + c] * (1 + scale) + shift
                }
            }
        }
        let tokens = Kernels.linear(x, rows: batch * n, inFeatures: d, weight: projOut, outFeatures: p * p * outChannels,
                                    bias: projOutBias)
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
