import Foundation

/// Configuration of a diffusers `AutoencoderKL` (its `vae/config.json`); only the decoder side is used.
///
/// Matches diffusers `models/autoencoders/autoencoder_kl.py::AutoencoderKL.__init__` defaults. Keys this
/// runtime does not need (`down_block_types`, `force_upcast`, `latents_mean`, …) are ignored;
/// so is `shift_factor`, which the PixArt-α pipeline never applies (it is null in its VAE).
public struct VAEConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var upBlockTypes: [String]
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var actFn: String
    public var latentChannels: Int
    public var normNumGroups: Int
    public var scalingFactor: Float
    public var usePostQuantConv: Bool
    public var midBlockAddAttention: Bool
    /// `sample_size` (its first entry when a list): the tile size of diffusers' tiled decoding.
    public var sampleSize: Int

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case actFn = "act_fn"
        case latentChannels = "latent_channels"
        case normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor"
        case usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
        case sampleSize = "sample_size"
    }

    public init(
        inChannels: Int = 3, outChannels: Int = 3, upBlockTypes: [String] = ["UpDecoderBlock2D"],
        blockOutChannels: [Int] = [64], layersPerBlock: Int = 1, actFn: String = "silu",
        latentChannels: Int = 4, normNumGroups: Int = 32, scalingFactor: Float = 0.18215,
        usePostQuantConv: Bool = true, midBlockAddAttention: Bool = true, sampleSize: Int = 32
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.upBlockTypes = upBlockTypes
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.actFn = actFn
        self.latentChannels = latentChannels
        self.normNumGroups = normNumGroups
        self.scalingFactor = scalingFactor
        self.usePostQuantConv = usePostQuantConv
        self.midBlockAddAttention = midBlockAddAttention
        self.sampleSize = sampleSize
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = VAEConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes) ?? d.upBlockTypes
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? d.blockOutChannels
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? d.layersPerBlock
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? d.actFn
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? d.latentChannels
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? d.normNumGroups
        scalingFactor = try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? d.scalingFactor
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? d.usePostQuantConv
        midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? d.midBlockAddAttention
        if let list = try? c.decodeIfPresent([Int].self, forKey: .sampleSize), let first = list.first {
            sampleSize = first
        } else {
            sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? d.sampleSize
        }
    }

    /// Parses a `vae/config.json`; `file` names it in errors.
    public init(json: [UInt8], file: String = "vae/config.json") throws {
        do {
            self = try ConfigJSON.decode(VAEConfig.self, from: Data(json))
        } catch {
            throw RuntimeError.invalidInput("\(file): bad vae config: \(error)")
        }
    }

    /// The sd-vae-ft-ema configuration used by every PixArt-α checkpoint (`formats/pixart.md` §4).
    public static let sdVAE = VAEConfig(
        upBlockTypes: Array(repeating: "UpDecoderBlock2D", count: 4), blockOutChannels: [128, 256, 512, 512],
        layersPerBlock: 2, sampleSize: 512)

    /// Pixels per latent cell along each axis: 2^(len(block_out_channels) − 1), as the pipelines compute it.
    public var vaeScaleFactor: Int { 1 << max(blockOutChannels.count - 1, 0) }

    /// Checks the values the decoder relies on; the error names the offending key.
    public func validate() throws {
        func bad(_ s: String) -> RuntimeError { .invalidInput("vae config: " + s) }
        guard !blockOutChannels.isEmpty, blockOutChannels.count <= 16 else {
            throw bad("block_out_channels must have 1 to 16 entries, found \(blockOutChannels.count)")
        }
        guard upBlockTypes.count == blockOutChannels.count else {
            throw bad("up_block_types has \(upBlockTypes.count) entries, block_out_channels \(blockOutChannels.count)")
        }
        if let t = upBlockTypes.first(where: { $0 != "UpDecoderBlock2D" }) { throw bad("unsupported up block type \(t)") }
        guard actFn == "silu" || actFn == "swish" else { throw bad("unsupported act_fn \(actFn)") }
        guard normNumGroups > 0 else { throw bad("norm_num_groups must be positive") }
        for c in blockOutChannels where c <= 0 || c > 1 << 16 || c % normNumGroups != 0 {
            throw bad("block_out_channels entry \(c) is not a positive multiple of norm_num_groups \(normNumGroups)")
        }
        guard (0...64).contains(layersPerBlock) else { throw bad("layers_per_block \(layersPerBlock) out of range") }
        guard (1...1 << 16).contains(latentChannels), (1...1 << 16).contains(outChannels) else {
            throw bad("latent_channels and out_channels must be positive")
        }
        guard scalingFactor.isFinite, scalingFactor != 0 else { throw bad("scaling_factor must be finite and non-zero") }
        guard (1...1 << 16).contains(sampleSize) else { throw bad("sample_size \(sampleSize) out of range") }
    }
}
