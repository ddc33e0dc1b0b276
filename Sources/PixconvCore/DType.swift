/// Element types of every tensor pixconv reads or writes.
///
/// Plain types are spelled as safetensors spells them (`F32`, `BF16`, …); block-quantized types
/// are spelled as ggml spells them (`Q8_0`, `Q4_0`, …). ggml's block layouts are in
/// `formats/store.md`.
public enum DType: String, Sendable, CaseIterable, Codable, Hashable {
    case F64, F32, F16, BF16
    case I64, I32, I16, I8
    case U64, U32, U16, U8
    case BOOL
    case F8_E4M3, F8_E5M2
    case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1

    /// Elements per block: 1 for plain types, 32 for ggml's block types.
    public var blockSize: Int {
        switch self {
        case .Q8_0, .Q4_0, .Q4_1, .Q5_0, .Q5_1: return 32
        default: return 1
        }
    }

    /// Bytes per block (for plain types, bytes per element).
    public var blockBytes: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        case .Q8_0: return 34
        case .Q4_0: return 18
        case .Q4_1: return 20
        case .Q5_0: return 22
        case .Q5_1: return 24
        }
    }

    public var isQuantized: Bool { blockSize > 1 }

    /// Floating-point types that the runtime can widen to f32.
    public var isFloatingPoint: Bool {
        switch self {
        case .F64, .F32, .F16, .BF16, .F8_E4M3, .F8_E5M2, .Q8_0, .Q4_0, .Q4_1, .Q5_0, .Q5_1: return true
        default: return false
        }
    }

    /// Bytes taken by `elements` values, or nil when it overflows or is not a whole number of blocks.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }
}

/// Checked product of a shape's dimensions; nil on a negative dimension or overflow.
public func elementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        if o { return nil }
        n = p
    }
    return n
}
