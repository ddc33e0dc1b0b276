import PixconvCore

/// A diffusers pipeline folder (`model_index.json` + one folder per component), or a single
/// component folder (`config.json` + weights), read as named components.
///
/// Layout: diffusers `DiffusionPipeline.save_pretrained` / `from_pretrained`
/// (`pipelines/pipeline_utils.py`), hub repo `PixArt-alpha/PixArt-XL-2-1024-MS`
/// (diffusers `DiffusionPipeline.from_pretrained`; `formats/README.md`). Keys of `model_index.json` that start with `_`
/// are metadata; a value `[library, class]` names a component stored in the folder of the same
/// name; `[null, null]` marks an absent component; other values (pipeline options such as
/// `requires_safety_checker`) are kept in `modelIndex` only. Component names must be plain
/// folder names (no `/`, `\`, NUL or leading `.`), so the index cannot point outside the folder.
///
/// Weights are chosen by `DiffusersWeights.choose` and opened by a pluggable opener, so a
/// PyTorch checkpoint reader can be added without changing this type. Symbolic links are
/// followed (hub caches link every file to a blob elsewhere).
public struct DiffusersFolder: Sendable {
    /// Opens one weights file (a `.safetensors`, a `*.safetensors.index*.json`, or a torch file).
    public typealias WeightsOpener = @Sendable (String) throws -> TensorSource

    public struct Options: Sendable {
        /// Also pick `.bin` / `.pth` / `.pt` weights when a folder has no safetensors.
        public var includeTorchWeights = false
        /// Largest JSON config accepted.
        public var maxConfigBytes = 16 << 20
        /// Largest `spiece.model` accepted.
        public var maxTokenizerBytes = 64 << 20

        public init() {}
    }

    public let path: String
    /// True when the folder has a `model_index.json`.
    public let isPipeline: Bool
    public let modelIndexBytes: [UInt8]?
    public let modelIndex: JSONValue?
    /// Components sorted by name.
    public let components: [DiffusersComponent]

    public init(path: String, options: Options = Options(), openWeights: WeightsOpener = DiffusersFolder.openSafetensors) throws {
        self.path = path
        guard DiffusersFiles.kind(of: path) == .directory else {
            throw ReaderError.notAModelFolder(path: path, reason: "not a directory")
        }
        let indexPath = DiffusersFiles.join(path, "model_index.json")
        if DiffusersFiles.kind(of: indexPath) == .file {
            isPipeline = true
            let bytes = try DiffusersFiles.read(indexPath, limit: options.maxConfigBytes)
            let index = try DiffusersFolder.parseJSON(bytes, path: indexPath)
            modelIndexBytes = bytes
            modelIndex = index
            guard case let .object(entries) = index else {
                throw ReaderError.notAModelFolder(path: indexPath, reason: "model_index.json is not an object")
            }
            var found: [DiffusersComponent] = []
            for entry in entries.members where !entry.key.hasPrefix("_") {
                guard case let .array(spec) = entry.value else { continue }  // a pipeline option
                guard spec.count == 2, spec.allSatisfy({ $0.string != nil || $0.isNull }) else {
                    throw ReaderError.badComponent(path: indexPath, component: entry.key, reason: "expected [library, class]")
                }
                if spec[0].isNull && spec[1].isNull { continue }
                guard DiffusersFolder.isPlainName(entry.key) else {
                    throw ReaderError.badComponent(path: indexPath, component: entry.key, reason: "not a plain folder name")
                }
                let folder = DiffusersFiles.join(path, entry.key)
                guard DiffusersFiles.kind(of: folder) == .directory else {
                    throw ReaderError.badComponent(path: path, component: entry.key, reason: "folder \(folder) is missing")
                }
                found.append(try DiffusersFolder.readComponent(
                    name: entry.key, folder: folder, library: spec[0].string, className: spec[1].string,
                    options: options, openWeights: openWeights))
            }
            components = found.sorted { $0.name < $1.name }
        } else {
            isPipeline = false
            modelIndexBytes = nil
            modelIndex = nil
            let names = try DiffusersFiles.list(path)
            let hasConfig = ["config.json", "scheduler_config.json"].contains { names.contains($0) }
            guard hasConfig || names.contains("spiece.model") else {
                throw ReaderError.notAModelFolder(path: path, reason: "no model_index.json, config.json or spiece.model")
            }
            let probe = try DiffusersFolder.readComponent(
                name: "", folder: path, library: nil, className: nil, options: options, openWeights: openWeights)
            let name = DiffusersFolder.inferName(folder: path, config: probe.config, hasTokenizer: probe.sentencePieceModel != nil)
            components = [DiffusersComponent(
                name: name, folder: path, configPath: probe.configPath, configBytes: probe.configBytes,
                config: probe.config, weightsPath: probe.weightsPath, weights: probe.weights,
                sentencePieceModel: probe.sentencePieceModel, ignoredTorchWeights: probe.ignoredTorchWeights)]
        }
    }

    public subscript(name: String) -> DiffusersComponent? {
        components.first { $0.name == name }
    }

    /// The default opener: safetensors files and sharded safetensors indexes only.
    public static let openSafetensors: WeightsOpener = { path in
        if path.hasSuffix(".safetensors") { return try SafetensorsFile(path: path) }
        if path.contains(".safetensors.index") && path.hasSuffix(".json") { return try SafetensorsIndex(path: path) }
        throw ReaderError.unsupportedWeights(path: path)
    }

    static func readComponent(
        name: String, folder: String, library: String?, className: String?, options: Options, openWeights: WeightsOpener
    ) throws -> DiffusersComponent {
        let names = try DiffusersFiles.list(folder)
        var configPath: String?
        var configBytes: [UInt8]?
        var config: JSONValue?
        for candidate in ["config.json", "scheduler_config.json", "tokenizer_config.json"] where names.contains(candidate) {
            let p = DiffusersFiles.join(folder, candidate)
            let bytes = try DiffusersFiles.read(p, limit: options.maxConfigBytes)
            configPath = p
            configBytes = bytes
            config = try parseJSON(bytes, path: p)
            break
        }
        var weightsPath: String?
        var weights: TensorSource?
        switch DiffusersWeights.choose(from: names, includeTorch: options.includeTorchWeights) {
        case .none: break
        case let .ambiguous(files):
            throw ReaderError.badComponent(
                path: folder, component: name, reason: "several weights files, none preferred: \(files.joined(separator: ", "))")
        case let .file(file):
            let p = DiffusersFiles.join(folder, file)
            weightsPath = p
            weights = try openWeights(p)
        }
        var spiece: [UInt8]?
        if names.contains("spiece.model") {
            spiece = try DiffusersFiles.read(DiffusersFiles.join(folder, "spiece.model"), limit: options.maxTokenizerBytes)
        }
        let torch = options.includeTorchWeights ? [] : names.filter { DiffusersWeights.isTorchWeights($0) }
        return DiffusersComponent(
            name: name, folder: folder, library: library, className: className, configPath: configPath,
            configBytes: configBytes, config: config, weightsPath: weightsPath, weights: weights, sentencePieceModel: spiece,
            ignoredTorchWeights: torch)
    }

    /// Configs as diffusers and transformers write them: Python's `json` module may emit
    /// `-Infinity` (e.g. the scheduler's `lambda_min_clipped`), so non-finite literals are allowed.
    static func parseJSON(_ bytes: [UInt8], path: String) throws(ReaderError) -> JSONValue {
        var limits = StrictJSON.Limits()
        limits.allowNonFiniteNumbers = true
        do { return try StrictJSON.parse(bytes, limits: limits) } catch { throw .badConfig(path: path, error: error) }
    }

    /// A name for a lone component folder: its folder name when that is a known component name,
    /// else what its config says it is, else its folder name.
    static func inferName(folder: String, config: JSONValue?, hasTokenizer: Bool) -> String {
        let base = DiffusersFiles.baseName(folder)
        if ["transformer", "text_encoder", "vae", "tokenizer", "scheduler"].contains(base) { return base }
        let className = config?["_class_name"]?.string ?? ""
        let architectures = config?["architectures"]?.array?.compactMap(\.string) ?? []
        if className.contains("Transformer2DModel") { return "transformer" }
        if className.hasPrefix("Autoencoder") { return "vae" }
        if className.hasSuffix("Scheduler") { return "scheduler" }
        if architectures.contains(where: { $0.hasPrefix("T5") }) || config?["model_type"]?.string == "t5" { return "text_encoder" }
        if hasTokenizer { return "tokenizer" }
        return base
    }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
    }
}
