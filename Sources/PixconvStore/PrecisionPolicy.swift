import PixconvCore

/// Decides each tensor's stored element type from the conversion target (`--dtype`) and the
/// tensor's name and shape. Rules (in order; `formats/store.md` "Precision policy"):
///
/// 1. Non-floating-point tensors (integer buffers) keep their type.
/// 2. Names matching a `--keep-f32` glob (`*` matches any run of characters) stay F32.
/// 3. 1-D tensors (biases, norm weights), tensors of ≤ 1024 elements, `scale_shift_table`s,
///    embedding and position tables (`shared.weight`, `embed_tokens`, `relative_attention_bias`,
///    `pos_embed`, `y_embedding`) and norms (a name part containing `norm`) stay F32.
/// 4. Otherwise the target; for Q8_0/Q4_0 a last dimension (the ggml row) that is not a multiple
///    of 32 falls back to F16.
public struct PrecisionPolicy: Sendable, Equatable {
    public enum Reason: String, Sendable {
        case target = "target"
        case notFloatingPoint = "not floating point"
        case keepPattern = "--keep-f32 pattern"
        case oneDimensional = "1-D"
        case small = "at most 1024 elements"
        case scaleShiftTable = "scale_shift_table"
        case embedding = "embedding or position table"
        case norm = "norm"
        case rowNotBlockMultiple = "row not a multiple of 32"
    }

    public let target: DType
    public let keepF32: [String]
    public static let smallTensorLimit = 1024
    public static let targets: [String: DType] = ["f32": .F32, "f16": .F16, "bf16": .BF16, "q8_0": .Q8_0, "q4_0": .Q4_0]
    /// `rel_attn_bias` is the store's abbreviation of `relative_attention_bias` (`StoreNames`).
    static let embeddingParts = ["relative_attention_bias", "rel_attn_bias", "pos_embed", "y_embedding", "embed_tokens"]

    /// `target` must be F32, F16, BF16, Q8_0 or Q4_0.
    public init(target: DType, keepF32: [String] = []) throws(StoreError) {
        guard PrecisionPolicy.targets.values.contains(target) else {
            throw .badWriterInput(file: "", reason: "unsupported target type \(target.rawValue)")
        }
        for p in keepF32 where p.isEmpty {
            throw .badWriterInput(file: "", reason: "empty --keep-f32 pattern")
        }
        self.target = target
        self.keepF32 = keepF32
    }

    /// Parses a CLI spelling: f32, f16, bf16, q8_0, q4_0 (case-insensitive).
    public init(targetName: String, keepF32: [String] = []) throws(StoreError) {
        guard let t = PrecisionPolicy.targets[targetName.lowercased()] else {
            throw .badWriterInput(file: "", reason: "unknown target '\(targetName)' (f32, f16, bf16, q8_0, q4_0)")
        }
        try self.init(target: t, keepF32: keepF32)
    }

    /// The stored type of a tensor and why.
    public func decide(name: String, shape: [Int], source: DType) -> (dtype: DType, reason: Reason) {
        guard source.isFloatingPoint else { return (source, .notFloatingPoint) }
        if keepF32.contains(where: { PrecisionPolicy.globMatch($0, name) }) { return (.F32, .keepPattern) }
        if shape.count <= 1 { return (.F32, .oneDimensional) }
        if (elementCount(shape) ?? Int.max) <= PrecisionPolicy.smallTensorLimit { return (.F32, .small) }
        let parts = name.split(separator: ".").map(String.init)
        if parts.contains(where: { $0.contains("scale_shift_table") }) { return (.F32, .scaleShiftTable) }
        if name == "shared.weight" || name.hasSuffix(".shared.weight")
            || parts.contains(where: { p in PrecisionPolicy.embeddingParts.contains { p.contains($0) } }) {
            return (.F32, .embedding)
        }
        if parts.contains(where: { $0.contains("norm") }) { return (.F32, .norm) }
        if target.isQuantized, (shape.last ?? 1) % target.blockSize != 0 { return (.F16, .rowNotBlockMultiple) }
        return (target, .target)
    }

    public func storedType(name: String, shape: [Int], source: DType) -> DType {
        decide(name: name, shape: shape, source: source).dtype
    }

    /// The policy as stored in `pixconv.precision_policy`.
    public var summary: String {
        let spelled = PrecisionPolicy.targets.first { $0.value == target }?.key ?? target.rawValue
        var s = "target=\(spelled); f32: 1-D, <=\(PrecisionPolicy.smallTensorLimit) elements, scale_shift_table, "
            + "shared.weight, embed_tokens, relative_attention_bias, pos_embed, y_embedding, *norm*"
        if !keepF32.isEmpty { s += "; keep-f32: " + keepF32.joined(separator: ", ") }
        if target.isQuantized { s += "; rows not a multiple of 32: f16" }
        return s
    }

    /// Glob match of the whole `name`: `*` matches any run of characters (dots included); every
    /// other character matches itself.
    public static func globMatch(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8)
        let n = Array(name.utf8)
        var i = 0, j = 0
        var star = -1, mark = 0
        while j < n.count {
            if i < p.count, p[i] != UInt8(ascii: "*"), p[i] == n[j] {
                i += 1
                j += 1
            } else if i < p.count, p[i] == UInt8(ascii: "*") {
                star = i
                mark = j
                i += 1
            } else if star >= 0 {
                i = star + 1
                mark += 1
                j = mark
            } else {
                return false
            }
        }
        while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }
}
