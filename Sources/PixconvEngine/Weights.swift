import PixconvCore
import PixconvQuant

/// Errors of loading model weights and running the pipeline.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    case missingComponent(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .missingTensor(n): return "missing tensor \(n)"
        case let .shapeMismatch(n, e, a): return "tensor \(n): expected shape \(e), found \(a)"
        case let .missingComponent(c): return "missing component: \(c)"
        case let .invalidInput(s): return s
        }
    }
}

/// Named weights of one component, read from any `TensorSource` and widened to f32 on demand.
///
/// Scoped like the reference modules: `weights.scope("transformer_blocks.0").scope("attn1")`.
public struct Weights: @unchecked Sendable {  // TensorSource implementations are immutable after load
    public let source: TensorSource
    public let prefix: String

    public init(_ source: TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
    }

    public func scope(_ name: String) -> Weights {
        Weights(source, prefix: prefix + name + ".")
    }

    public func has(_ name: String) -> Bool { source.info(for: prefix + name) != nil }

    public func shape(_ name: String) throws -> [Int] {
        guard let info = source.info(for: prefix + name) else { throw RuntimeError.missingTensor(prefix + name) }
        return info.shape
    }

    /// The tensor `name` as f32; its shape must equal `shape` when one is given.
    public func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        let full = prefix + name
        guard let info = source.info(for: full) else { throw RuntimeError.missingTensor(full) }
        if let shape, shape != info.shape {
            throw RuntimeError.shapeMismatch(tensor: full, expected: shape, actual: info.shape)
        }
        return try dequantizeToFloat(try source.data(for: full))
    }
}

extension Weights {
    /// Drops this process's resident copies of the mapped pages behind every tensor under this
    /// scope (`madvise(MADV_DONTNEED)`); they are read back from the page cache if used again.
    /// Tensors that are not file-backed are left alone.
    public func releasePages() {
        for info in source.tensors where info.name.hasPrefix(prefix) {
            guard let data = try? source.data(for: info.name), let file = data.owner as? MappedFile else { continue }
            file.dropPages(of: data.bytes)
        }
    }

    /// Starts reading the mapped pages behind every tensor under this scope into the page cache
    /// in the background (`madvise(MADV_WILLNEED)`): called one layer ahead, the disk reads of a
    /// cold store overlap the computation of the layer before. Tensors that are not file-backed
    /// are left alone.
    public func prefetchPages() {
        for info in source.tensors where info.name.hasPrefix(prefix) {
            guard let data = try? source.data(for: info.name), let file = data.owner as? MappedFile else { continue }
            file.prefetchPages(of: data.bytes)
        }
    }
}
