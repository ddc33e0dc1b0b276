import PixconvCore
import PixconvQuant

/// How one source tensor will be stored: its store name (`<component>.<source name>`), stored
/// type and byte count, and why the policy chose that type.
public struct StoreTensorPlan: Sendable, Equatable {
    public var component: String
    public var sourceName: String
    public var sourceType: DType
    public var stored: TensorInfo
    public var reason: PrecisionPolicy.Reason

    public init(component: String, sourceName: String, sourceType: DType, stored: TensorInfo, reason: PrecisionPolicy.Reason) {
        self.component = component
        self.sourceName = sourceName
        self.sourceType = sourceType
        self.stored = stored
        self.reason = reason
    }
}

extension PrecisionPolicy {
    /// Plans every tensor of one component's source: store name (`StoreNames.stored`, component
    /// prefix, long segments abbreviated), type by this policy, byte count checked. Throws when a store name would exceed 63 bytes, a
    /// shape has more than 4 dims, or GGUF cannot hold the type.
    public func plan(component: String, tensors: [TensorInfo]) throws -> [StoreTensorPlan] {
        guard StoreKeys.isValidComponent(component) else {
            throw StoreError.badWriterInput(file: "", reason: "bad component name '\(component)'")
        }
        return try tensors.map { t in
            // Rules see the full diffusers key; the stored name abbreviates long segments (StoreNames).
            let fullKey = component + "." + t.name
            let name = StoreNames.stored(t.name, prefix: component + ".")
            guard name.utf8.count <= StoreNames.maxLength else {
                throw StoreError.badWriterInput(file: "", reason: "store name '\(name)' is longer than 63 bytes")
            }
            guard t.shape.count <= 4 else {
                throw StoreError.badWriterInput(file: "", reason: "tensor '\(t.name)' has \(t.shape.count) dims (GGUF holds 4)")
            }
            let (dtype, reason) = decide(name: fullKey, shape: t.shape, source: t.dtype)
            guard GGMLType.id(of: dtype) != nil else {
                throw StoreError.badWriterInput(file: "", reason: "tensor '\(t.name)': GGUF cannot hold \(dtype.rawValue)")
            }
            let bytes = dtype == t.dtype ? t.byteCount : try Quantizer.storedByteCount(shape: t.shape, as: dtype, tensor: name)
            return StoreTensorPlan(component: component, sourceName: t.name, sourceType: t.dtype,
                                   stored: TensorInfo(name: name, dtype: dtype, shape: t.shape, byteCount: bytes), reason: reason)
        }
    }
}

extension PixconvStoreWriter {
    /// Writes planned tensors, reading each from `sources[plan.component]` and converting it with
    /// `TensorEncoder`. `onOverflow` is called once per tensor (first pass) whose values do not
    /// fit the stored type (they would become inf); the store is still written.
    @discardableResult
    public static func write(
        to path: String, manifest: StoreManifest, plans: [StoreTensorPlan], sources: [String: TensorSource],
        replace: Bool = true, onOverflow: ((StoreTensorPlan, RangeOverflow) -> Void)? = nil
    ) throws -> StoreWriteSummary {
        var reported = Set<Int>()
        return try write(to: path, manifest: manifest, tensors: plans.map(\.stored), replace: replace) { i, _, sink in
            let plan = plans[i]
            guard let source = sources[plan.component] else {
                throw StoreError.badWriterInput(file: path, reason: "no source for component '\(plan.component)'")
            }
            let data = try source.data(for: plan.sourceName)
            guard data.info.dtype == plan.sourceType, data.info.shape == plan.stored.shape else {
                throw StoreError.producerChanged(file: path, tensor: plan.stored.name)
            }
            let overflow = try TensorEncoder.stream(data, to: plan.stored.dtype, sink: sink)
            if let o = overflow, reported.insert(i).inserted { onOverflow?(plan, o) }
        }
    }
}
