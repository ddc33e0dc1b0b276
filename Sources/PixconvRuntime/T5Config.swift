/// `text_encoder/config.json` of a T5 (v1.1) encoder (T: `configuration_t5.py::T5Config`).
/// Missing keys take T5Config's defaults; unknown keys are ignored.
public struct T5Config: Codable, Sendable, Equatable {
    public var dModel: Int = 512
    public var dKv: Int = 64
    public var numHeads: Int = 8
    public var numLayers: Int = 6
    public var dFf: Int = 2048
    /// "relu", "gated-gelu", "gated-relu", "gelu", "gated-silu", … (`[gated-]ACT`).
    public var feedForwardProj: String = "relu"
    public var relativeAttentionNumBuckets: Int = 32
    public var relativeAttentionMaxDistance: Int = 128
    public var layerNormEpsilon: Double = 1e-6
    public var vocabSize: Int = 32128

    enum CodingKeys: String, CodingKey {
        case dModel = "d_model"
        case dKv = "d_kv"
        case numHeads = "num_heads"
        case numLayers = "num_layers"
        case dFf = "d_ff"
        case feedForwardProj = "feed_forward_proj"
        case relativeAttentionNumBuckets = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance"
        case layerNormEpsilon = "layer_norm_epsilon"
        case vocabSize = "vocab_size"
    }

    public init(dModel: Int = 512, dKv: Int = 64, numHeads: Int = 8, numLayers: Int = 6, dFf: Int = 2048,
                feedForwardProj: String = "relu", relativeAttentionNumBuckets: Int = 32,
                relativeAttentionMaxDistance: Int = 128, layerNormEpsilon: Double = 1e-6, vocabSize: Int = 32128) {
        self.dModel = dModel
        self.dKv = dKv
        self.numHeads = numHeads
        self.numLayers = numLayers
        self.dFf = dFf
        self.feedForwardProj = feedForwardProj
        self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
        self.layerNormEpsilon = layerNormEpsilon
        self.vocabSize = vocabSize
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = T5Config()
        dModel = try c.decodeIfPresent(Int.self, forKey: .dModel) ?? d.dModel
        dKv = try c.decodeIfPresent(Int.self, forKey: .dKv) ?? d.dKv
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? d.numHeads
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? d.numLayers
        dFf = try c.decodeIfPresent(Int.self, forKey: .dFf) ?? d.dFf
        feedForwardProj = try c.decodeIfPresent(String.self, forKey: .feedForwardProj) ?? d.feedForwardProj
        relativeAttentionNumBuckets = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionNumBuckets)
            ?? d.relativeAttentionNumBuckets
        relativeAttentionMaxDistance = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionMaxDistance)
            ?? d.relativeAttentionMaxDistance
        layerNormEpsilon = try c.decodeIfPresent(Double.self, forKey: .layerNormEpsilon) ?? d.layerNormEpsilon
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
    }

    /// Feed-forward activation (T: `activations.py` ACT2FN).
    public enum Activation: String, Sendable {
        case relu
        /// Exact GELU (erf).
        case gelu
        /// Tanh approximation (`NewGELUActivation`).
        case geluNew = "gelu_new"
        case silu
    }

    /// `(is_gated_act, dense_act_fn)` as T5Config derives them: `ACT` or `gated-ACT`, and
    /// "gated-gelu" means gelu_new (legacy alias).
    public func feedForward() throws -> (gated: Bool, activation: Activation) {
        let parts = feedForwardProj.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || (parts.count == 2 && parts[0] == "gated") else {
            throw RuntimeError.invalidInput("t5 config: feed_forward_proj \(feedForwardProj.debugDescription) is not ACT or gated-ACT")
        }
        let gated = parts.count == 2
        if feedForwardProj == "gated-gelu" { return (true, .geluNew) }
        let name = String(parts[parts.count - 1])
        guard let act = Activation(rawValue: name == "swish" ? "silu" : name) else {
            throw RuntimeError.invalidInput("t5 config: unsupported activation \(name.debugDescription)")
        }
        return (gated, act)
    }

    /// Checks that the sizes are positive and bounded (hostile configs must not cause huge allocations).
    public func validate() throws {
        let limits: [(String, Int, ClosedRange<Int>)] = [
            ("d_model", dModel, 1...65536), ("d_kv", dKv, 1...4096), ("num_heads", numHeads, 1...1024),
            ("num_layers", numLayers, 0...1024), ("d_ff", dFf, 1...262_144),
            ("relative_attention_num_buckets", relativeAttentionNumBuckets, 2...4096),
            ("relative_attention_max_distance", relativeAttentionMaxDistance, 1...1_000_000),
            ("vocab_size", vocabSize, 1...10_000_000),
        ]
        for (name, value, range) in limits where !range.contains(value) {
            throw RuntimeError.invalidInput("t5 config: \(name) \(value) is outside \(range)")
        }
        guard layerNormEpsilon.isFinite, layerNormEpsilon >= 0 else {
            throw RuntimeError.invalidInput("t5 config: layer_norm_epsilon \(layerNormEpsilon) is not a finite non-negative number")
        }
        _ = try feedForward()
    }

    /// Inner attention width, `num_heads · d_kv`.
    public var innerDim: Int { numHeads * dKv }
}
