import PixconvCore

/// The tensors of `base` whose names start with `prefix`, named without it: a store's
/// `dit.` tensors seen as a diffusers transformer, a checkpoint's `state_dict.` seen as a state dict.
public final class ScopedSource: TensorSource, @unchecked Sendable {  // immutable after init
    public let base: TensorSource
    public let prefix: String
    public let tensors: [TensorInfo]
    private let baseNames: [String: String]

    /// `rename` turns a name without the prefix into the name this view shows (e.g. the store's
    /// abbreviations back into diffusers keys); it must be one-to-one.
    public init(_ base: TensorSource, prefix: String, rename: (String) -> String = { $0 }) {
        self.base = base
        self.prefix = prefix
        var names: [String: String] = [:]
        self.tensors = base.tensors.compactMap { info in
            guard info.name.hasPrefix(prefix) else { return nil }
            var scoped = info
            scoped.name = rename(String(info.name.dropFirst(prefix.count)))
            names[scoped.name] = info.name
            return scoped
        }.sorted { $0.name < $1.name }
        baseNames = names
    }

    public func data(for name: String) throws -> TensorData {
        let data = try base.data(for: baseNames[name] ?? prefix + name)
        var info = data.info
        info.name = name
        return TensorData(info: info, owner: data.owner, bytes: data.bytes)
    }
}
