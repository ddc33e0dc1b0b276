/// Errors of reading a PyTorch checkpoint (`TorchCheckpoint`) beyond the zip and pickle layers,
/// which throw `ZipError` and `PickleError`.
public enum TorchError: Error, CustomStringConvertible, Equatable, Sendable {
    case notACheckpoint(String)
    case torchScript
    case layout(String)
    case badRecord(record: String, reason: String)
    case missingRecord(tensor: String, record: String)
    case recordSize(tensor: String, record: String, expected: Int, actual: Int)
    case viewOutOfStorage(tensor: String, record: String, needed: Int, available: Int)
    case sizeOverflow(tensor: String)
    case overlappingView(tensor: String, record: String, bytes: Int, storageBytes: Int)
    case duplicateTensorName(String)
    case unknownTensor(String)
    case legacy(String)

    public var description: String {
        switch self {
        case let .notACheckpoint(why): return "not a PyTorch checkpoint: \(why)"
        case .torchScript: return "TorchScript archives are code, not supported (constants.pkl or code/ present)"
        case let .layout(why): return "torch checkpoint: \(why)"
        case let .badRecord(r, why): return "torch checkpoint: record \(r): \(why)"
        case let .missingRecord(t, r): return "tensor \(t): storage record \(r) is missing"
        case let .recordSize(t, r, e, a):
            return "tensor \(t): record \(r) holds \(a) bytes, but its storage needs numel × itemsize = \(e)"
        case let .viewOutOfStorage(t, r, n, a):
            return "tensor \(t): view needs \(n) bytes of record \(r), which holds \(a)"
        case let .sizeOverflow(t): return "tensor \(t): size overflow"
        case let .overlappingView(t, r, b, s):
            return "tensor \(t): strides repeat elements of record \(r) into \(b) bytes, more than its \(s) (refused above 16 MiB)"
        case let .duplicateTensorName(n): return "torch checkpoint: two tensors named \(n)"
        case let .unknownTensor(n): return "no tensor named \(n)"
        case let .legacy(why): return "legacy torch checkpoint: \(why)"
        }
    }
}
