import PixconvCore

/// One component of a diffusers pipeline folder (`transformer`, `text_encoder`, `vae`,
/// `tokenizer`, `scheduler`, …), as `DiffusersFolder` found it on disk.
public struct DiffusersComponent: Sendable {
    /// The component's name: its key in `model_index.json`, or for a single component folder
    /// the name inferred from its folder name or config.
    public let name: String
    /// The component's folder.
    public let folder: String
    /// `["diffusers", "Transformer2DModel"]` from `model_index.json`, when known.
    public let library: String?
    public let className: String?
    /// `config.json`, `scheduler_config.json` or `tokenizer_config.json`, whichever the folder has.
    public let configPath: String?
    /// The config file's exact bytes (for passing on to `JSONDecoder` or into a store).
    public let configBytes: [UInt8]?
    /// The config, parsed strictly.
    public let config: JSONValue?
    /// The weights file chosen (a `.safetensors` file, a `*.safetensors.index.json`, or with
    /// `includeTorchWeights` a torch file), and its opened tensors.
    public let weightsPath: String?
    public let weights: TensorSource?
    /// `spiece.model` (tokenizer folders), when present.
    public let sentencePieceModel: [UInt8]?
    /// PyTorch weight files (`.bin`, `.pth`, `.pt`) left unread because `includeTorchWeights`
    /// was off, so that a caller can say why a component has no weights.
    public let ignoredTorchWeights: [String]

    public init(
        name: String, folder: String, library: String? = nil, className: String? = nil,
        configPath: String? = nil, configBytes: [UInt8]? = nil, config: JSONValue? = nil,
        weightsPath: String? = nil, weights: TensorSource? = nil, sentencePieceModel: [UInt8]? = nil,
        ignoredTorchWeights: [String] = []
    ) {
        self.name = name
        self.folder = folder
        self.library = library
        self.className = className
        self.configPath = configPath
        self.configBytes = configBytes
        self.config = config
        self.weightsPath = weightsPath
        self.weights = weights
        self.sentencePieceModel = sentencePieceModel
        self.ignoredTorchWeights = ignoredTorchWeights
    }

    /// What the tensors are (`ModelKind.detect` on the weights, with the config).
    public var kind: ModelKind? {
        weights.map { ModelKind.detect($0.tensors, config: config) }
    }
}
