import PixconvCore

/// Errors of turning inputs into components and writing stores.
public enum ConvertError: Error, CustomStringConvertible, Equatable {
    case unmappedKey(origin: String, key: String)
    case duplicateTarget(origin: String, name: String)
    case badFusedShape(origin: String, key: String, shape: [Int], parts: Int)
    case notFloatingPoint(tensor: String, dtype: DType)
    case unknownInput(path: String, reason: String)
    case duplicateComponent(kind: String, first: String, second: String)
    case missingTensor(origin: String, name: String)
    case badConfig(origin: String, reason: String)
    case noComponents
    case unsupported(String)
    case f16Overflow(tensor: String, count: Int, firstIndex: Int, value: Float)

    public var description: String {
        switch self {
        case let .unmappedKey(o, k): return "\(o): tensor \(k) has no place in the diffusers layout (formats/keymap-pixart-original.tsv)"
        case let .duplicateTarget(o, n): return "\(o): two tensors map to \(n)"
        case let .badFusedShape(o, k, s, p): return "\(o): tensor \(k) of shape \(s) cannot be split into \(p) equal parts along dim 0"
        case let .notFloatingPoint(t, d): return "tensor \(t) has element type \(d.rawValue), not a floating-point type"
        case let .unknownInput(p, r): return "\(p): \(r)"
        case let .duplicateComponent(k, a, b): return "two inputs hold a \(k): \(a) and \(b)"
        case let .missingTensor(o, n): return "\(o): missing tensor \(n)"
        case let .badConfig(o, r): return "\(o): \(r)"
        case .noComponents: return "the inputs hold no component pixconv can store"
        case let .unsupported(s): return s
        case let .f16Overflow(t, n, i, v): return "tensor \(t): \(n) values overflow f16 (first at index \(i): \(v)); keep it in f32 with --keep-f32"
        }
    }
}
