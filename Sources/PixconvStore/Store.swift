import PixconvCore

/// Metadata keys and naming rules of a pixconv store (a GGUF v3 file). Documented in
/// `formats/store.md`.
public enum StoreKeys {
    public static let architecture = "general.architecture"  // "pixart"
    public static let quantizationVersion = "general.quantization_version"  // UINT32 2
    public static let fileType = "general.file_type"  // UINT32, llama.cpp LlamaFileType
    public static let alignment = "general.alignment"  // UINT32 64
    public static let version = "pixconv.version"  // STRING, the pixconv version that wrote it
    public static let components = "pixconv.components"  // ARRAY of STRING, e.g. ["dit", "te", "vae"]
    public static let spieceModel = "pixconv.tokenizer.spiece_model"  // ARRAY of UINT8
    public static let schedulerConfig = "pixconv.scheduler.config"  // STRING (JSON)
    public static let sources = "pixconv.sources"  // STRING (JSON: name, size, sha256 per input)
    public static let tensorCRC32 = "pixconv.tensor_crc32"  // ARRAY of UINT32, tensor-info order
    public static let headerCRC32 = "pixconv.header_crc32"  // UINT32, see formats/store.md
    public static let precisionPolicy = "pixconv.precision_policy"  // STRING
    public static let family = "pixconv.family"  // STRING, ModelFamily raw value (stores with a transformer)
    public static let familyReason = "pixconv.family_reason"  // STRING, what decided the family

    /// `pixconv.<component>.config`: the component's config.json text.
    public static func config(_ component: String) -> String { "pixconv.\(component).config" }

    public static let architectureName = "pixart"
    public static let quantizationVersionValue: UInt32 = 2
    public static let storeAlignment = 64

    /// Known component prefixes: `dit.` (PixArt transformer), `te.` (T5 encoder), `vae.` (VAE).
    public static let knownComponents = ["dit", "te", "vae"]

    /// `[a-z0-9]+`, as GGUF requires of `general.architecture`.
    public static func isValidArchitecture(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    /// Component names follow the same rule as keys' parts: `[a-z0-9_]+`.
    public static func isValidComponent(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }
}
