import Foundation
import PixconvCore
import PixconvReaders

/// A reader's error, with the input path added when the reader's message lacks it.
public struct InputError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// One path given on the command line, opened by the reader its bytes call for: a safetensors
/// file, a sharded index, a PyTorch checkpoint (zip or legacy), a GGUF store, or a diffusers
/// pipeline or component folder. Opening reads headers only, never tensor data.
public final class ModelInput: @unchecked Sendable {  // immutable after init
    public enum Format: String, Codable, Sendable {
        case safetensors
        case safetensorsIndex = "safetensors-index"
        case torchZip = "torch-zip"
        case torchLegacy = "torch-legacy"
        case gguf
        case diffusersPipeline = "diffusers-pipeline"
        case diffusersComponent = "diffusers-component"
    }

    /// A tensor set with what came beside it: one per component of a folder, one for a file.
    public struct Part: @unchecked Sendable {  // sources are immutable after load
        /// The component folder's name (`transformer`, …), or nil for a single file.
        public var name: String?
        public var source: TensorSource?
        public var configText: String?
        public var spieceModel: [UInt8]?
        public var kind: ModelKind?
    }

    public let path: String
    public let format: Format
    public let parts: [Part]
    /// Non-tensor values of a torch checkpoint (e.g. `epoch`), as one-line renderings.
    public let values: [(name: String, value: String)]
    public let metadata: [String: String]
    /// The pixconv store, when the input is one (a GGUF file with pixconv metadata).
    public let store: PixconvStore?
    /// A pipeline folder's `model_index.json` `_class_name` (`PixArtAlphaPipeline`, …).
    public let pipelineClass: String?

    public init(path: String) throws {
        self.path = path
        // stat, not FileManager.fileExists: a symlink loop or a permission problem is reported as such.
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileError.open(path: path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            var options = DiffusersFolder.Options()
            options.includeTorchWeights = true
            let folder = try DiffusersFolder(path: path, options: options, openWeights: ModelInput.openWeights)
            format = folder.isPipeline ? .diffusersPipeline : .diffusersComponent
            parts = folder.components.map { c in
                Part(name: c.name, source: c.weights, configText: c.configBytes.map { String(decoding: $0, as: UTF8.self) },
                     spieceModel: c.sentencePieceModel,
                     kind: c.weights.map { ModelKind.detect($0.tensors, config: c.config) })
            }
            values = []
            metadata = [:]
            store = nil
            pipelineClass = folder.modelIndex?["_class_name"]?.string
            return
        }
        pipelineClass = nil
        let file = try MappedFile(path: path)
        do {
            (format, parts, values, metadata, store) = try ModelInput.openFile(file, path: path)
        } catch let error as CustomStringConvertible where !error.description.contains(path) {
            throw InputError(path: path, message: error.description)
        }
    }

    typealias Opened = (format: Format, parts: [Part], values: [(name: String, value: String)],
                        metadata: [String: String], store: PixconvStore?)

    /// Picks the reader by magic bytes and name: GGUF magic, `.json` (an index), `.safetensors`,
    /// a zip or pickle start (torch), else a plausible safetensors header.
    private static func openFile(_ file: MappedFile, path: String) throws -> Opened {
        let format: Format, parts: [Part], values: [(name: String, value: String)]
        let metadata: [String: String], store: PixconvStore?
        let head = file.bytes.prefix(8)
        let torchMagic = head.starts(with: [0x50, 0x4B]) || head.first == 0x80
        if head.starts(with: Array("GGUF".utf8)) || path.hasSuffix(".gguf") {
            format = .gguf
            values = []
            metadata = [:]
            let gguf = try GGUFFile(path: path)
            // Any pixconv key makes it a store, so damage to one key name (say pixconv.components)
            // cannot turn a store into a foreign GGUF that skips the store's checks and CRCs.
            if gguf.metadata.contains(where: { $0.key.hasPrefix("pixconv.") }) {
                let opened = try PixconvStore(path: path)
                store = opened
                parts = ModelInput.storeParts(opened)
            } else {
                store = nil
                parts = [Part(name: nil, source: gguf, kind: ModelKind.detect(gguf.tensors))]
            }
        } else if path.hasSuffix(".json") {
            let index = try SafetensorsIndex(path: path)
            format = .safetensorsIndex
            parts = [Part(name: nil, source: index, kind: ModelKind.detect(index.tensors))]
            values = []
            metadata = [:]
            store = nil
        } else if path.hasSuffix(".safetensors") || (!torchMagic && !ModelInput.hasTorchExtension(path)
                                                      && ModelInput.looksLikeSafetensors(file)) {
            let st = try SafetensorsFile(path: path)
            format = .safetensors
            parts = [Part(name: nil, source: st, configText: ModelInput.siblingConfig(of: path),
                          kind: ModelKind.detect(st.tensors))]
            values = []
            metadata = st.metadata
            store = nil
        } else {
            let torch = try TorchCheckpoint(file: file)
            if case .legacy = torch.format { format = .torchLegacy } else { format = .torchZip }
            parts = [Part(name: nil, source: torch, kind: ModelKind.detect(torch.tensors))]
            values = torch.values.map { ($0.name, $0.value.summary) }
            metadata = [:]
            store = nil
        }
        return (format, parts, values, metadata, store)
    }

    /// One part per store component, named as the diffusers folder names it.
    static func storeParts(_ store: PixconvStore) -> [Part] {
        var parts: [Part] = []
        for kind in ComponentKind.allCases {
            let component = String(kind.storePrefix.dropLast())
            if kind == .tokenizer, let spiece = store.spieceModel {
                parts.append(Part(name: kind.rawValue, spieceModel: spiece))
            } else if kind == .scheduler, let config = store.schedulerConfig {
                parts.append(Part(name: kind.rawValue, configText: config))
            } else if store.components.contains(component) {
                let source = ScopedSource(store, prefix: kind.storePrefix, rename: StoreNames.key)
                let config = store.config(for: component)
                var limits = StrictJSON.Limits()
                limits.allowNonFiniteNumbers = true
                let parsed = config.flatMap { try? StrictJSON.parse($0, limits: limits) }
                parts.append(Part(name: kind.rawValue, source: source, configText: config,
                                  kind: ModelKind.detect(source.tensors, config: parsed)))
            }
        }
        return parts
    }

    /// Opens a weights file of a diffusers component folder by its contents.
    static let openWeights: DiffusersFolder.WeightsOpener = { path in
        if path.hasSuffix(".json") { return try SafetensorsIndex(path: path) }
        if path.hasSuffix(".safetensors") { return try SafetensorsFile(path: path) }
        return try TorchCheckpoint(file: try MappedFile(path: path))
    }

    /// `.pt`, `.pth`, `.ckpt`: names only `torch.save` output carries (an empty or tiny file with
    /// such a name is reported by the torch reader, not as a too-short safetensors header).
    static func hasTorchExtension(_ path: String) -> Bool {
        [".pt", ".pth", ".ckpt"].contains { path.hasSuffix($0) }
    }

    /// A safetensors file starts with a little-endian header length that fits the file, then `{`
    /// (after optional whitespace).
    static func looksLikeSafetensors(_ file: MappedFile) -> Bool {
        guard file.count >= 9 else { return file.count < 4 || !file.bytes.starts(with: [0x50, 0x4B]) }
        let n = file.bytes.readLE(0, as: UInt64.self)
        guard n <= UInt64(file.count - 8) else { return false }
        for i in 8..<min(file.count, 8 + Int(n)) {
            let b = file.bytes[i]
            if b == UInt8(ascii: "{") { return true }
            if b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 { return false }
        }
        return false
    }

    /// `config.json` in the same folder as a weights file, when there is one.
    static func siblingConfig(of path: String) -> String? {
        let folder = (path as NSString).deletingLastPathComponent
        let config = (folder.isEmpty ? "." : folder) + "/config.json"
        guard let data = FileManager.default.contents(atPath: config), data.count < 16 << 20 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
