import PixconvCore

/// A component's tensors in the diffusers layout as a `TensorSource`, without copying: renamed
/// tensors are the source's bytes, and a part of a fused tensor (split along dim 0) is a
/// contiguous slice of them. This is how `generate` runs straight from an original `.pth`.
public final class ComponentSource: TensorSource, @unchecked Sendable {  // immutable after init
    public let tensors: [TensorInfo]
    private let planned: [String: PlannedTensor]

    public init(_ component: Component) {
        var infos: [TensorInfo] = []
        var byName: [String: PlannedTensor] = [:]
        for t in component.tensors {
            let bytes = t.sourceInfo.byteCount / max(t.parts, 1)
            infos.append(TensorInfo(name: t.name, dtype: t.sourceInfo.dtype, shape: t.shape, byteCount: bytes))
            byName[t.name] = t
        }
        tensors = infos.sorted { $0.name < $1.name }
        planned = byName
    }

    public func data(for name: String) throws -> TensorData {
        guard let t = planned[name] else { throw ConvertError.missingTensor(origin: "component", name: name) }
        let data = try t.source.data(for: t.sourceName)
        let size = data.bytes.count / max(t.parts, 1)
        let slice = UnsafeRawBufferPointer(rebasing: data.bytes[(t.part * size)..<((t.part + 1) * size)])
        let info = TensorInfo(name: name, dtype: data.info.dtype, shape: t.shape, byteCount: size)
        return TensorData(info: info, owner: data.owner, bytes: slice)
    }
}
