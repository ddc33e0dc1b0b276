import PixconvCore

/// A storage a checkpoint's persistent id names: `('storage', <type>, key, location, numel)` in
/// zip checkpoints (`torch/serialization.py::_save`), with a sixth `view_metadata` item in the
/// legacy stream format (`_legacy_save`).
public struct PickleStorageRef: Sendable, Hashable {
    /// Record key: `data/<key>` in a zip checkpoint, the storage's root key in a legacy file.
    public var key: String
    /// Element type of the storage class (`torch.HalfStorage` → F16); U8 for `torch.UntypedStorage`.
    public var dtype: DType
    /// True for `torch.UntypedStorage`, whose `numel` counts bytes.
    public var isUntyped: Bool
    /// Declared element count (bytes for untyped storages).
    public var numel: Int
    public var location: String
    /// Legacy storage views: the view starts `viewOffset` elements into the root storage and holds
    /// `numel` elements. 0 for everything else.
    public var viewOffset: Int

    public init(key: String, dtype: DType, isUntyped: Bool, numel: Int, location: String, viewOffset: Int = 0) {
        self.key = key
        self.dtype = dtype
        self.isUntyped = isUntyped
        self.numel = numel
        self.location = location
        self.viewOffset = viewOffset
    }

    /// Bytes the storage holds, or nil on overflow.
    public var byteCount: Int? { dtype.byteCount(elements: numel) }
}

/// A tensor as `torch._utils._rebuild_tensor_v2/_v3` describes it: a strided view of a storage.
/// Offset and strides count elements of `dtype`. Not yet validated against the storage's bytes.
public struct PickleTensorRef: Sendable, Hashable {
    public var storage: PickleStorageRef
    public var dtype: DType
    public var storageOffset: Int
    public var shape: [Int]
    public var stride: [Int]
    public var requiresGrad: Bool

    public init(storage: PickleStorageRef, dtype: DType, storageOffset: Int, shape: [Int], stride: [Int],
                requiresGrad: Bool) {
        self.storage = storage
        self.dtype = dtype
        self.storageOffset = storageOffset
        self.shape = shape
        self.stride = stride
        self.requiresGrad = requiresGrad
    }
}

/// One key/value pair of a pickled dict, in insertion order.
public struct PickleDictEntry: Sendable, Hashable {
    public var key: PickleValue
    public var value: PickleValue

    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// The plain data an inert pickle produces: no objects, no callables, only values.
public indirect enum PickleValue: Sendable, Hashable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer outside Int64, in decimal.
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// dict, OrderedDict: pairs in insertion order (keys are unique).
    case dict([PickleDictEntry])
    /// set, frozenset: elements in pickle order.
    case set([PickleValue])
    case tensor(PickleTensorRef)
    case storage(PickleStorageRef)
    /// An allow-listed global used as a value, e.g. `torch.float16` for `_rebuild_tensor_v3`.
    case global(String)

    /// The value for a string key of a dict, if this is a dict.
    public subscript(key: String) -> PickleValue? {
        guard case let .dict(entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    /// A short, one-line rendering for listings (`inspect`); containers show their size only.
    public var summary: String {
        switch self {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .bigInt(s): return s
        case let .float(d): return String(d)
        case let .string(s): return s.debugDescription
        case let .bytes(b): return "bytes[\(b.count)]"
        case let .list(l): return "list[\(l.count)]"
        case let .tuple(t): return "tuple[\(t.count)]"
        case let .dict(d): return "dict[\(d.count)]"
        case let .set(s): return "set[\(s.count)]"
        case let .tensor(t): return "tensor \(t.dtype.rawValue) \(t.shape)"
        case let .storage(s): return "storage \(s.key) \(s.dtype.rawValue)[\(s.numel)]"
        case let .global(g): return g
        }
    }
}
