import PixconvCore

/// The tensors of `base` whose names start with `prefix`, named without it: a store's
/// `dit.` tensors seen as a diffusers transformer, a checkpoint's `state_dict.` seen as a state dict.
public final class ScopedSource: TensorSource, @unchecked Sendable {  // immutable after init
    public let base: TensorSource
    public let prefix: String
    public let tensors: [TensorInfo]

    public init(_ base: TensorSource, prefix: String) {
        self.base = base
        self.prefix = prefix
        self.tensors = base.tensors.compactMap { info in
            guard info.name.hasPrefix(prefix) else { return nil }
            var scoped = info
            scoped.name = String(info.name.dropFirst(prefix.count))
            return scoped
        }
    }

    public func data(for name: String) throws -> TensorData {
        let data = try base.data(for: prefix + name)
        var info = data.info
        info.name = name
        return TensorData(info: info, owner: data.owner, bytes: data.bytes)
    }
}
