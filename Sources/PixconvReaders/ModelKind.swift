import PixconvCore

/// What a set of tensors is, read from tensor names and shapes (plus a config when one is given):
/// a PixArt-α transformer in the original or the diffusers layout, a T5 encoder, an SD-style VAE,
/// or unknown. Encodes to the JSON that `pixconv inspect --json` prints.
///
/// Key names: diffusers `PixArtTransformer2DModel`, the original PixArt `PixArt.py` / `PixArtMS.py`
/// (`formats/keymap-pixart-original.tsv`), transformers `modeling_t5.py`, diffusers
/// `AutoencoderKL` (`formats/keymap-diffusers-legacy.tsv`; the LDM layout `decoder.up.N.block.M` is recognised too). Keys may sit under a
/// prefix such as `state_dict.` or `first_stage_model.`; `prefix` reports it.
public struct ModelKind: Codable, Sendable, Equatable {
    public enum Family: String, Codable, Sendable {
        case pixartTransformer = "pixart_transformer"
        case t5Encoder = "t5_encoder"
        case vae
        case unknown
    }

    public enum Layout: String, Codable, Sendable {
        case original, diffusers
    }

    public struct PixArt: Codable, Sendable, Equatable {
        public var depth: Int
        public var hiddenSize: Int
        /// From the config's `num_attention_heads` when present, else hidden / 72 (PixArt's head size).
        public var headCount: Int?
        public var headsFromConfig: Bool
        public var captionChannels: Int?
        public var patchSize: Int
        public var inChannels: Int
        public var outChannels: Int?
        /// Latent side length: original layout from `pos_embed` (√N × patch), diffusers from config.
        public var sampleSize: Int?
        /// Has the resolution and aspect-ratio embedders (PixArt-XL-2-1024-MS).
        public var multiScale: Bool
        public var mlpHiddenSize: Int?
        /// Has the learned null caption (`y_embedding`, original only in recent converters).
        public var hasNullCaption: Bool

        enum CodingKeys: String, CodingKey {
            case depth, hiddenSize = "hidden_size", headCount = "num_heads", headsFromConfig = "heads_from_config"
            case captionChannels = "caption_channels", patchSize = "patch_size", inChannels = "in_channels"
            case outChannels = "out_channels", sampleSize = "sample_size", multiScale = "multi_scale"
            case mlpHiddenSize = "mlp_hidden_size", hasNullCaption = "has_null_caption"
        }
    }

    public struct T5: Codable, Sendable, Equatable {
        public var modelDim: Int
        public var layerCount: Int
        /// From the config's `num_heads`, else the width of `relative_attention_bias`.
        public var headCount: Int?
        public var keyValueDim: Int?
        public var feedForwardDim: Int?
        public var vocabSize: Int
        /// Gated GELU feed-forward (`wi_0`/`wi_1`, T5 v1.1) rather than `wi`.
        public var gated: Bool
        public var relativeAttentionBuckets: Int?
        public var hasDecoder: Bool

        enum CodingKeys: String, CodingKey {
            case modelDim = "d_model", layerCount = "num_layers", headCount = "num_heads", keyValueDim = "d_kv"
            case feedForwardDim = "d_ff", vocabSize = "vocab_size", gated
            case relativeAttentionBuckets = "relative_attention_num_buckets", hasDecoder = "has_decoder"
        }
    }

    public struct VAE: Codable, Sendable, Equatable {
        public var latentChannels: Int
        public var blockOutChannels: [Int]
        public var layersPerBlock: Int?
        public var outChannels: Int?
        public var hasEncoder: Bool
        public var hasDecoder: Bool
        /// Mid-block attention names: "to_q" (current diffusers), "query" (old diffusers) or "q" (LDM).
        public var attentionNaming: String?

        enum CodingKeys: String, CodingKey {
            case latentChannels = "latent_channels", blockOutChannels = "block_out_channels"
            case layersPerBlock = "layers_per_block", outChannels = "out_channels"
            case hasEncoder = "has_encoder", hasDecoder = "has_decoder", attentionNaming = "attention_naming"
        }
    }

    public var family: Family
    public var layout: Layout?
    public var prefix: String
    /// Other prefixes holding the same model (e.g. `state_dict_ema.` next to `state_dict.`).
    public var otherPrefixes: [String]
    public var tensorCount: Int
    public var parameterCount: Int
    public var pixart: PixArt?
    public var t5: T5?
    public var vae: VAE?

    enum CodingKeys: String, CodingKey {
        case family, layout, prefix, otherPrefixes = "other_prefixes", tensorCount = "tensor_count", parameterCount = "parameter_count", pixart, t5, vae
    }

    /// Identifies `tensors`; `config` (a parsed `config.json`) supplies what shapes cannot.
    public static func detect(_ tensors: [TensorInfo], config: JSONValue? = nil) -> ModelKind {
        let shapes = ModelKindShapes(tensors)
        var kind = ModelKind(family: .unknown, layout: nil, prefix: "", otherPrefixes: [], tensorCount: tensors.count,
                             parameterCount: shapes.parameterCount)
        if let p = shapes.prefix(ending: "x_embedder.proj.weight"), shapes.has(p + "t_block.1.weight"),
           let info = pixartOriginal(shapes, p)
        {
            (kind.family, kind.layout, kind.prefix, kind.pixart) = (.pixartTransformer, .original, p, info)
        } else if let p = shapes.prefix(ending: "adaln_single.linear.weight"), shapes.has(p + "pos_embed.proj.weight"),
                  let info = pixartDiffusers(shapes, p, config: config)
        {
            (kind.family, kind.layout, kind.prefix, kind.pixart) = (.pixartTransformer, .diffusers, p, info)
        } else if let p = shapes.prefix(ending: "encoder.block.0.layer.0.SelfAttention.q.weight"),
                  let info = t5(shapes, p, config: config)
        {
            (kind.family, kind.layout, kind.prefix, kind.t5) = (.t5Encoder, nil, p, info)
        } else if let p = shapes.prefix(ending: "post_quant_conv.weight") ?? shapes.prefix(ending: "decoder.conv_in.weight"),
                  let (layout, info) = vae(shapes, p)
        {
            (kind.family, kind.layout, kind.prefix, kind.vae) = (.vae, layout, p, info)
        }
        let marker: String? = switch (kind.family, kind.layout) {
        case (.pixartTransformer, .original?): "x_embedder.proj.weight"
        case (.pixartTransformer, _): "adaln_single.linear.weight"
        case (.t5Encoder, _): "encoder.block.0.layer.0.SelfAttention.q.weight"
        case (.vae, _): shapes.has(kind.prefix + "post_quant_conv.weight") ? "post_quant_conv.weight" : "decoder.conv_in.weight"
        case (.unknown, _): nil
        }
        if let marker { kind.otherPrefixes = shapes.prefixes(ending: marker).filter { $0 != kind.prefix } }
        if kind.pixart != nil, kind.pixart?.headCount == nil, let h = kind.pixart?.hiddenSize, h % 72 == 0 {
            kind.pixart?.headCount = h / 72
        }
        return kind
    }

    static func pixartOriginal(_ s: ModelKindShapes, _ p: String) -> PixArt? {
        guard let embed = s[p + "x_embedder.proj.weight"], embed.count == 4, embed[2] == embed[3], embed[2] > 0 else { return nil }
        let hidden = embed[0]
        let patch = embed[2]
        var sample: Int?
        if let pos = s[p + "pos_embed"], pos.count == 3, let side = ModelKindShapes.exactSquareRoot(pos[1]) {
            sample = side * patch
        }
        let out = s[p + "final_layer.linear.weight"].flatMap { $0.first }.map { $0 / (patch * patch) }
        return PixArt(
            depth: s.countIndexed(p + "blocks.", ".attn.qkv.weight"), hiddenSize: hidden, headCount: nil,
            headsFromConfig: false, captionChannels: s[p + "y_embedder.y_proj.fc1.weight"]?.last, patchSize: patch,
            inChannels: embed[1], outChannels: out, sampleSize: sample, multiScale: s.has(p + "csize_embedder.mlp.0.weight"),
            mlpHiddenSize: s[p + "blocks.0.mlp.fc1.weight"]?.first, hasNullCaption: s.has(p + "y_embedder.y_embedding"))
    }

    static func pixartDiffusers(_ s: ModelKindShapes, _ p: String, config: JSONValue?) -> PixArt? {
        guard let embed = s[p + "pos_embed.proj.weight"], embed.count == 4, embed[2] == embed[3], embed[2] > 0 else { return nil }
        let patch = embed[2]
        let heads = config?["num_attention_heads"]?.int
        return PixArt(
            depth: s.countIndexed(p + "transformer_blocks.", ".attn1.to_q.weight"), hiddenSize: embed[0],
            headCount: heads, headsFromConfig: heads != nil, captionChannels: s[p + "caption_projection.linear_1.weight"]?.last,
            patchSize: patch, inChannels: embed[1], outChannels: s[p + "proj_out.weight"].flatMap { $0.first }.map { $0 / (patch * patch) },
            sampleSize: config?["sample_size"]?.int,
            multiScale: s.has(p + "adaln_single.emb.resolution_embedder.linear_1.weight"),
            mlpHiddenSize: s[p + "transformer_blocks.0.ff.net.0.proj.weight"]?.first,
            hasNullCaption: s.has(p + "caption_projection.y_embedding"))
    }

    static func t5(_ s: ModelKindShapes, _ p: String, config: JSONValue?) -> T5? {
        guard let embedding = s[p + "shared.weight"] ?? s[p + "encoder.embed_tokens.weight"], embedding.count == 2 else { return nil }
        let block = p + "encoder.block.0.layer."
        let bias = s[block + "0.SelfAttention.relative_attention_bias.weight"]
        let configHeads = config?["num_heads"]?.int
        let heads = configHeads ?? bias?.last
        var kv = config?["d_kv"]?.int
        if kv == nil, let h = heads, h > 0, let inner = s[block + "0.SelfAttention.q.weight"]?.first, inner % h == 0 { kv = inner / h }
        let gated = s.has(block + "1.DenseReluDense.wi_0.weight")
        let ff = s[block + (gated ? "1.DenseReluDense.wi_0.weight" : "1.DenseReluDense.wi.weight")]?.first
        return T5(
            modelDim: embedding[1], layerCount: s.countIndexed(p + "encoder.block.", ".layer.0.SelfAttention.q.weight"),
            headCount: heads, keyValueDim: kv, feedForwardDim: ff, vocabSize: embedding[0], gated: gated,
            relativeAttentionBuckets: bias?.first, hasDecoder: s.has(p + "decoder.block.0.layer.0.SelfAttention.q.weight"))
    }

    static func vae(_ s: ModelKindShapes, _ p: String) -> (Layout, VAE)? {
        let convIn = s[p + "decoder.conv_in.weight"]
        guard let latent = s[p + "post_quant_conv.weight"]?.first ?? convIn?.dropFirst().first else { return nil }
        let d = p + "decoder."
        var channels: [Int] = []
        var layout = Layout.diffusers
        var resnets = 0
        if s.has(d + "up_blocks.0.resnets.0.conv1.weight") {
            // diffusers: up_blocks.0 is the deepest level; block_out_channels lists shallow → deep.
            let n = s.countIndexed(d + "up_blocks.", ".resnets.0.conv2.weight")
            channels = (0..<n).compactMap { s[d + "up_blocks.\($0).resnets.0.conv2.weight"]?.first }.reversed()
            resnets = s.countIndexed(d + "up_blocks.0.resnets.", ".conv1.weight")
        } else if s.has(d + "up.0.block.0.conv1.weight") {
            // LDM: decoder.up.i is level i, shallow → deep.
            layout = .original
            let n = s.countIndexed(d + "up.", ".block.0.conv2.weight")
            channels = (0..<n).compactMap { s[d + "up.\($0).block.0.conv2.weight"]?.first }
            resnets = s.countIndexed(d + "up.0.block.", ".conv1.weight")
        } else if convIn == nil {
            return nil
        }
        var naming: String?
        for (key, name) in [("mid_block.attentions.0.to_q.weight", "to_q"), ("mid_block.attentions.0.query.weight", "query"),
                            ("mid.attn_1.q.weight", "q")] where s.has(d + key) {
            naming = name
            break
        }
        return (layout, VAE(
            latentChannels: latent, blockOutChannels: channels, layersPerBlock: resnets > 0 ? resnets - 1 : nil,
            outChannels: s[d + "conv_out.weight"]?.first, hasEncoder: s.has(p + "encoder.conv_in.weight"),
            hasDecoder: convIn != nil, attentionNaming: naming))
    }
}

/// Tensor shapes by name, with the lookups `ModelKind` needs.
struct ModelKindShapes {
    let shapes: [String: [Int]]
    let names: [String]
    let parameterCount: Int

    init(_ tensors: [TensorInfo]) {
        var shapes: [String: [Int]] = [:]
        var total = 0
        for t in tensors {
            shapes[t.name] = t.shape
            let (sum, overflow) = total.addingReportingOverflow(elementCount(t.shape) ?? 0)
            total = overflow ? Int.max : sum
        }
        self.shapes = shapes
        self.names = tensors.map(\.name)
        self.parameterCount = total
    }

    subscript(name: String) -> [Int]? { shapes[name] }
    func has(_ name: String) -> Bool { shapes[name] != nil }

    /// The shortest prefix (empty or ending in `.`) under which `suffix` is a tensor name; the
    /// first by name among equally short ones.
    func prefix(ending suffix: String) -> String? {
        prefixes(ending: suffix).first
    }

    /// Every prefix under which `suffix` is a tensor name, shortest first, then by name.
    func prefixes(ending suffix: String) -> [String] {
        var found: [String] = []
        for name in names where name.hasSuffix(suffix) {
            let p = String(name.dropLast(suffix.count))
            if p.isEmpty || p.hasSuffix(".") { found.append(p) }
        }
        return found.sorted { ($0.utf8.count, $0) < ($1.utf8.count, $1) }
    }

    /// How many of `head0 tail`, `head1 tail`, … exist consecutively from 0.
    func countIndexed(_ head: String, _ tail: String) -> Int {
        var n = 0
        while has(head + String(n) + tail) { n += 1 }
        return n
    }

    static func exactSquareRoot(_ n: Int) -> Int? {
        guard n > 0 else { return nil }
        var r = Int(Double(n).squareRoot())
        while r * r > n { r -= 1 }
        while (r + 1) * (r + 1) <= n { r += 1 }
        return r * r == n ? r : nil
    }
}
