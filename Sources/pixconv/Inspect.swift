import ArgumentParser
import Foundation
import PixconvCore
import PixconvReaders
import PixconvStore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, values and kind of a checkpoint, folder or store.",
        discussion: """
            Reads headers only: no tensor data is loaded, so even multi-gigabyte files open at once.

            Examples:
              pixconv inspect PixArt-XL-2-512x512.pth
              pixconv inspect PixArt-XL-2-1024-MS/                 # a diffusers pipeline folder
              pixconv inspect text_encoder/model.safetensors.index.json
              pixconv inspect pixart-512.q8_0.gguf --json
            """)

    @Argument(help: "A .safetensors file, a *.safetensors.index.json, a torch .pth/.pt/.ckpt/.bin, a .gguf store, or a diffusers folder.")
    var path: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let input = try ModelInput(path: path)
        let report = InspectReport(input)
        if json {
            try printJSON(report)
        } else {
            print(report.text, terminator: "")
        }
    }
}

/// What `inspect` prints; the JSON keys are stable.
struct InspectReport: Encodable {
    struct Tensor: Encodable {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: Int
    }

    struct ComponentReport: Encodable {
        var name: String?
        var kind: ModelKind?
        var config: String?
        var tensorCount: Int
        var parameters: Int
        var bytes: Int
        var hasTokenizer: Bool

        enum CodingKeys: String, CodingKey {
            case name, kind, config, parameters, bytes
            case tensorCount = "tensor_count", hasTokenizer = "has_tokenizer"
        }
    }

    struct StoreReport: Encodable {
        var pixconvVersion: String
        var precisionPolicy: String?
        var fileType: UInt32?
        var sources: String?
        var storedTypes: [String: Int]

        enum CodingKeys: String, CodingKey {
            case pixconvVersion = "pixconv_version", precisionPolicy = "precision_policy"
            case fileType = "file_type", sources, storedTypes = "stored_types"
        }
    }

    struct FamilyReport: Encodable {
        var family: String
        var name: String
        var reason: String
        var certain: Bool
        var scheduler: String
        var steps: Int
        var guidanceScale: Float
        var timesteps: [Int]?
        var textLength: Int
        var pipelineClass: String

        enum CodingKeys: String, CodingKey {
            case family, name, reason, certain, scheduler, steps, timesteps
            case guidanceScale = "guidance_scale", textLength = "text_length", pipelineClass = "pipeline_class"
        }

        /// The family of the input's transformer and its defaults; nil without a transformer.
        init?(_ input: ModelInput) {
            guard let components = try? input.components() else { return nil }
            let byKind = Dictionary(components.map { ($0.kind, $0) }, uniquingKeysWith: { a, _ in a })
            guard let transformer = byKind[.transformer] else { return nil }
            let found = FamilyDetection.detect(FamilyDetection.Evidence(components: byKind))
            let d = found.family.defaults
            let sample = transformer.configJSON.flatMap { FamilyDetection.configValue($0, "sample_size")?.int }
            family = found.family.rawValue
            name = found.family.displayName(sampleSize: sample)
            reason = found.reason
            certain = found.certain
            scheduler = d.scheduler
            steps = d.steps
            guidanceScale = d.guidanceScale
            timesteps = d.timesteps
            textLength = d.textLength
            pipelineClass = d.pipelineClass
        }

        var text: String {
            var out = "family: \(name) (\(terminalSafe(reason)))\n"
            out += "family defaults: \(scheduler), \(steps) step\(steps == 1 ? "" : "s"), guidance \(guidanceScale)"
            if let t = timesteps { out += ", timesteps \(t.map(String.init).joined(separator: ","))" }
            out += ", \(textLength) text tokens (\(pipelineClass))\n"
            return out
        }
    }

    var path: String
    var format: String
    var tensors: [Tensor]
    var metadata: [String: String]
    var values: [String: String]
    var parameters: Int
    var bytes: Int
    var tensorCount: Int
    var components: [ComponentReport]
    var store: StoreReport?
    var family: FamilyReport?

    enum CodingKeys: String, CodingKey {
        case path, format, tensors, metadata, values, parameters, bytes, components, store, family
        case tensorCount = "tensor_count"
    }

    init(_ input: ModelInput) {
        path = input.path
        format = input.format.rawValue
        metadata = input.metadata
        values = Dictionary(input.values.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        var all: [Tensor] = []
        components = input.parts.map { part in
            let infos = part.source?.tensors ?? []
            let prefix = part.name.map { $0 + "/" } ?? ""
            all += infos.map { Tensor(name: prefix + $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteCount) }
            return ComponentReport(
                name: part.name, kind: part.kind, config: part.configText, tensorCount: infos.count,
                parameters: infos.reduce(0) { $0 + $1.elementCount }, bytes: infos.reduce(0) { $0 + $1.byteCount },
                hasTokenizer: part.spieceModel != nil)
        }
        tensors = all.sorted { $0.name < $1.name }
        tensorCount = tensors.count
        parameters = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        bytes = tensors.reduce(0) { $0 + $1.bytes }
        if let s = input.store {
            var types: [String: Int] = [:]
            for t in s.tensors { types[t.dtype.rawValue, default: 0] += 1 }
            store = StoreReport(pixconvVersion: s.version, precisionPolicy: s.precisionPolicy, fileType: s.fileType,
                                sources: s.sources, storedTypes: types)
        }
        family = FamilyReport(input)
    }

    var text: String {
        // Names, keys and values come from the file: escaped so each stays on its line (terminalSafe).
        var out = "\(terminalSafe(path)): \(format)\n"
        for component in components {
            let label = component.name.map { "[\(terminalSafe($0))] " } ?? ""
            if let kind = component.kind {
                out += "  \(label)\(InspectReport.describe(kind))\n"
            } else if component.hasTokenizer {
                out += "  \(label)tokenizer (spiece.model)\n"
            } else if component.config != nil {
                out += "  \(label)configuration only\n"
            }
        }
        if let store {
            out += "store: pixconv \(store.pixconvVersion)"
            out += ", types " + store.storedTypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            out += "\n"
            if let policy = store.precisionPolicy { out += "precision policy: \(terminalSafe(policy))\n" }
        }
        if let family { out += family.text }
        let nameWidth = min(72, tensors.map { terminalSafe($0.name).count }.max() ?? 0)
        out += "tensors (\(tensorCount)):\n"
        for t in tensors {
            let safeName = terminalSafe(t.name)
            let name = safeName.padding(toLength: max(nameWidth, safeName.count), withPad: " ", startingAt: 0)
            let dtype = t.dtype.padding(toLength: 5, withPad: " ", startingAt: 0)
            out += "  \(name)  \(dtype)  [\(t.shape.map(String.init).joined(separator: ", "))]  \(t.bytes)\n"
        }
        if !values.isEmpty {
            out += "values:\n"
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { out += "  \(terminalSafe(k)) = \(terminalSafe(v))\n" }
        }
        if !metadata.isEmpty {
            out += "metadata:\n"
            for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { out += "  \(terminalSafe(k)) = \(terminalSafe(v))\n" }
        }
        out += "total: \(tensorCount) tensors, \(parameters) parameters, \(bytes) bytes\n"
        return out
    }

    static func describe(_ kind: ModelKind) -> String {
        switch kind.family {
        case .pixartTransformer:
            guard let p = kind.pixart else { return "PixArt transformer" }
            let layout = kind.layout == .original ? "original PixArt layout" : "diffusers layout"
            var text = "PixArt transformer (\(layout)): depth \(p.depth), hidden \(p.hiddenSize)"
            if let h = p.headCount { text += ", heads \(h)" }
            if let s = p.sampleSize { text += ", sample size \(s)" }
            text += p.multiScale ? ", micro-conditions (α 1024-MS)" : ", no micro-conditions"
            if !kind.prefix.isEmpty { text += ", under \"\(terminalSafe(kind.prefix))\"" }
            return text
        case .t5Encoder:
            guard let t = kind.t5 else { return "T5 encoder" }
            return "T5 encoder: d_model \(t.modelDim), \(t.layerCount) layers, vocabulary \(t.vocabSize)"
                + (t.gated ? ", gated-GELU (v1.1)" : "")
        case .vae:
            guard let v = kind.vae else { return "VAE" }
            return "SD-style VAE: latent channels \(v.latentChannels), blocks \(v.blockOutChannels)"
        case .unknown:
            return "unknown model (\(kind.tensorCount) tensors)"
        }
    }
}
