import Foundation

/// The transformer's `config.json` (D: `pixart_transformer_2d.py::PixArtTransformer2DModel.__init__`),
/// with the constructor defaults for absent keys. Hub configs name the class `Transformer2DModel`;
/// the keys are the same.
public struct PixArtConfig: Codable, Sendable, Equatable {
    public var numAttentionHeads: Int = 16
    public var attentionHeadDim: Int = 72
    public var inChannels: Int = 4
    public var outChannels: Int? = 8
    public var numLayers: Int = 28
    /// T5 width (4096 for the real models). nil ⇒ no caption projection (diffusers' default).
    public var captionChannels: Int? = nil
    public var crossAttentionDim: Int? = 1152
    public var sampleSize: Int = 128
    public var patchSize: Int = 2
    public var normEps: Double = 1e-6
    /// nil ⇒ max(sample_size / 64, 1) (integer division).
    public var interpolationScale: Double? = nil
    /// nil ⇒ sample_size == 128.
    public var useAdditionalConditions: Bool? = nil
    public var activationFn: String = "gelu-approximate"
    public var normType: String = "ada_norm_single"
    public var attentionBias: Bool = true
    public var normElementwiseAffine: Bool = false

    public init() {}

    /// heads · head_dim.
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    /// Output channels (out_channels, or in_channels when null).
    public var resolvedOutChannels: Int { outChannels ?? inChannels }
    public var resolvedInterpolationScale: Double { interpolationScale ?? Double(max(sampleSize / 64, 1)) }
    public var resolvedUseAdditionalConditions: Bool { useAdditionalConditions ?? (sampleSize == 128) }
    /// Patch-grid size the position embedding is trained for (`sample_size // patch_size`).
    public var baseSize: Int { sampleSize / patchSize }

    enum CodingKeys: String, CodingKey {
        case numAttentionHeads = "num_attention_heads", attentionHeadDim = "attention_head_dim"
        case inChannels = "in_channels", outChannels = "out_channels", numLayers = "num_layers"
        case captionChannels = "caption_channels", crossAttentionDim = "cross_attention_dim"
        case sampleSize = "sample_size", patchSize = "patch_size", normEps = "norm_eps"
        case interpolationScale = "interpolation_scale", useAdditionalConditions = "use_additional_conditions"
        case activationFn = "activation_fn", normType = "norm_type", attentionBias = "attention_bias"
        case normElementwiseAffine = "norm_elementwise_affine"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PixArtConfig()
        func get<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        numAttentionHeads = try get(.numAttentionHeads, d.numAttentionHeads)
        attentionHeadDim = try get(.attentionHeadDim, d.attentionHeadDim)
        inChannels = try get(.inChannels, d.inChannels)
        outChannels = c.contains(.outChannels) ? try c.decodeIfPresent(Int.self, forKey: .outChannels) : d.outChannels
        numLayers = try get(.numLayers, d.numLayers)
        captionChannels = try c.decodeIfPresent(Int.self, forKey: .captionChannels)
        crossAttentionDim = c.contains(.crossAttentionDim)
            ? try c.decodeIfPresent(Int.self, forKey: .crossAttentionDim) : d.crossAttentionDim
        sampleSize = try get(.sampleSize, d.sampleSize)
        patchSize = try get(.patchSize, d.patchSize)
        normEps = try get(.normEps, d.normEps)
        interpolationScale = try c.decodeIfPresent(Double.self, forKey: .interpolationScale)
        useAdditionalConditions = try c.decodeIfPresent(Bool.self, forKey: .useAdditionalConditions)
        activationFn = try get(.activationFn, d.activationFn)
        normType = try get(.normType, d.normType)
        attentionBias = try get(.attentionBias, d.attentionBias)
        normElementwiseAffine = try get(.normElementwiseAffine, d.normElementwiseAffine)
    }

    /// Decodes a transformer config.json through `ConfigJSON` (strict JSON; Python's bare `Infinity`/`NaN` accepted).
    public static func decode(json data: Data) throws -> PixArtConfig {
        try ConfigJSON.decode(PixArtConfig.self, from: data)
    }

    public static func load(path: String) throws -> PixArtConfig {
        try decode(json: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Checks the sizes and the options this runtime implements; throws `invalidInput` otherwise.
    public func validate() throws {
        func fail(_ s: String) -> RuntimeError { RuntimeError.invalidInput("transformer config: " + s) }
        for (name, v) in [("num_attention_heads", numAttentionHeads), ("attention_head_dim", attentionHeadDim),
                          ("in_channels", inChannels), ("out_channels", resolvedOutChannels), ("patch_size", patchSize),
                          ("sample_size", sampleSize)] where v < 1 || v > 1 << 16 {
            throw fail("\(name) = \(v) is out of range")
        }
        guard numLayers >= 0, numLayers <= 1024 else { throw fail("num_layers = \(numLayers) is out of range") }
        guard innerDim % 4 == 0 else { throw fail("inner dim \(innerDim) is not a multiple of 4 (2-D sin-cos embedding)") }
        guard normType == "ada_norm_single" else { throw fail("norm_type \(normType) is not supported") }
        guard activationFn == "gelu-approximate" else { throw fail("activation_fn \(activationFn) is not supported") }
        guard !normElementwiseAffine else { throw fail("norm_elementwise_affine true is not supported") }
        if let c = captionChannels, c < 1 || c > 1 << 16 { throw fail("caption_channels = \(c) is out of range") }
        if let s = interpolationScale, !(s > 0 && s.isFinite) { throw fail("interpolation_scale = \(s) is not positive") }
        if resolvedUseAdditionalConditions, innerDim % 3 != 0 {
            throw fail("inner dim \(innerDim) is not a multiple of 3 (size conditions)")
        }
    }
}
