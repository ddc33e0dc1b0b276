import PixconvCore
import PixconvQuant

/// The parts of a PixArt-α pipeline that pixconv stores.
public enum ComponentKind: String, Sendable, Codable, CaseIterable, Comparable {
    case transformer
    case textEncoder = "text_encoder"
    case vae
    case tokenizer
    case scheduler

    /// Tensor-name prefix inside a pixconv store (`formats/store.md`).
    public var storePrefix: String {
        switch self {
        case .transformer: return "dit."
        case .textEncoder: return "te."
        case .vae: return "vae."
        case .tokenizer: return "tok."
        case .scheduler: return "sched."
        }
    }

    /// The weights file a diffusers folder uses for this component.
    public var diffusersWeightsName: String {
        self == .textEncoder ? "model.safetensors" : "diffusion_pytorch_model.safetensors"
    }

    public static func < (a: ComponentKind, b: ComponentKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One component read from an input, with its tensors already in the diffusers layout.
public struct Component: @unchecked Sendable {  // sources are immutable after load
    public var kind: ComponentKind
    /// Where it came from (a file or folder path), for messages.
    public var origin: String
    /// The component's `config.json` (or `scheduler_config.json`) text, inferred when the input had none.
    public var configJSON: String?
    /// `spiece.model` bytes, for the tokenizer.
    public var spieceModel: [UInt8]?
    /// Output tensors in the diffusers layout, sorted by name.
    public var tensors: [PlannedTensor]
    /// Transformer: the family its input store records (`pixconv.family`).
    public var recordedFamily: FamilyDetection?
    /// Transformer: the `model_index.json` pipeline class of the folder it came from.
    public var pipelineClass: String?

    public init(kind: ComponentKind, origin: String, configJSON: String? = nil, spieceModel: [UInt8]? = nil,
                tensors: [PlannedTensor] = []) {
        self.kind = kind
        self.origin = origin
        self.configJSON = configJSON
        self.spieceModel = spieceModel
        self.tensors = tensors.sorted { $0.name < $1.name }
    }
}

/// One output tensor: where its values come from and how.
public struct PlannedTensor: @unchecked Sendable {  // the source is immutable after load
    /// Name in the diffusers layout (without the store prefix).
    public var name: String
    public var shape: [Int]
    public var source: TensorSource
    public var sourceName: String
    public var sourceInfo: TensorInfo
    /// For a fused source: this tensor is part `part` of `parts` equal slices along dim 0.
    public var part: Int = 0
    public var parts: Int = 1

    public init(name: String, source: TensorSource, sourceInfo: TensorInfo, part: Int = 0, parts: Int = 1) {
        self.name = name
        self.source = source
        self.sourceName = sourceInfo.name
        self.sourceInfo = sourceInfo
        self.part = part
        self.parts = parts
        var shape = sourceInfo.shape
        if parts > 1, !shape.isEmpty { shape[0] /= parts }
        self.shape = shape
    }

    /// The tensor's bytes in its source type, without copying (for a fused source, the part's
    /// contiguous slice), described by `name`-free source info with this tensor's shape.
    public func data() throws -> TensorData {
        let data = try source.data(for: sourceName)
        guard data.info.dtype.isFloatingPoint else {
            throw ConvertError.notFloatingPoint(tensor: sourceName, dtype: data.info.dtype)
        }
        guard parts > 1 else { return data }
        let size = data.bytes.count / parts
        let slice = UnsafeRawBufferPointer(rebasing: data.bytes[(part * size)..<((part + 1) * size)])
        let info = TensorInfo(name: sourceName, dtype: data.info.dtype, shape: shape, byteCount: size)
        return TensorData(info: info, owner: data.owner, bytes: slice)
    }

    /// The tensor's values as f32 (the slice for a fused source).
    public func floats() throws -> [Float] {
        let data = try source.data(for: sourceName)
        guard data.info.dtype.isFloatingPoint else {
            throw ConvertError.notFloatingPoint(tensor: sourceName, dtype: data.info.dtype)
        }
        let all = try dequantizeToFloat(data)
        guard parts > 1 else { return all }
        let count = all.count / parts
        return Array(all[(part * count)..<((part + 1) * count)])
    }
}
