import PixconvCore

/// Values that a conversion would turn from finite into inf (or NaN): how many, and the first.
public struct RangeOverflow: Equatable, Sendable, CustomStringConvertible {
    /// Number of input values whose stored form is no longer finite.
    public var count: Int
    /// Index (row-major) of the first such value, and the value itself.
    public var firstIndex: Int
    public var firstValue: Float

    public init(count: Int, firstIndex: Int, firstValue: Float) {
        self.count = count
        self.firstIndex = firstIndex
        self.firstValue = firstValue
    }

    public var description: String {
        "\(count) value(s) out of range, first at index \(firstIndex) (\(firstValue))"
    }
}

/// Encodes f32 values into the types a pixconv store holds: F32, F16, BF16, Q8_0, Q4_0.
///
/// Works row by row: the tensor's last dimension is the row (ggml `ne[0]`), and for block types a
/// row must be a whole number of 32-element blocks (`QuantError.badRowLength` otherwise; the
/// converter's `PrecisionPolicy` falls back to F16 for such tensors). Output bytes are identical to
/// gguf-py 0.19.0 `gguf.quants.quantize` (see `HalfPrecision`, `Q8_0Codec`, `Q4_0Codec`).
public enum Quantizer {
    /// The element types `encode` can produce.
    public static let targets: [DType] = [.F32, .F16, .BF16, .Q8_0, .Q4_0]

    /// Checks that a tensor of `shape` can be stored as `dtype`; returns its byte count.
    public static func storedByteCount(shape: [Int], as dtype: DType, tensor: String = "") throws(QuantError) -> Int {
        guard targets.contains(dtype) else { throw .unsupportedTarget(tensor: tensor, dtype: dtype) }
        guard let n = elementCount(shape) else { throw .sizeMismatch(tensor: tensor, expected: -1, actual: -1) }
        let row = shape.last ?? 1
        guard row % dtype.blockSize == 0 else {
            throw .badRowLength(tensor: tensor, rowLength: row, blockSize: dtype.blockSize)
        }
        guard let bytes = dtype.byteCount(elements: n) else {
            throw .badRowLength(tensor: tensor, rowLength: row, blockSize: dtype.blockSize)
        }
        return bytes
    }

    /// Encodes `src` (whole rows of `rowLength` values) as `dtype` into `dst`, which must hold
    /// exactly `dtype.byteCount(elements: src.count)` bytes.
    public static func encode(
        _ src: UnsafeBufferPointer<Float>, rowLength: Int, to dtype: DType, into dst: UnsafeMutableRawBufferPointer,
        tensor: String = ""
    ) throws(QuantError) {
        guard targets.contains(dtype) else { throw .unsupportedTarget(tensor: tensor, dtype: dtype) }
        guard rowLength > 0 ? src.count % rowLength == 0 : src.count == 0,
              rowLength % dtype.blockSize == 0 || src.count == 0
        else { throw .badRowLength(tensor: tensor, rowLength: rowLength, blockSize: dtype.blockSize) }
        guard let need = dtype.byteCount(elements: src.count), dst.count == need else {
            throw .sizeMismatch(tensor: tensor, expected: dtype.byteCount(elements: src.count) ?? -1, actual: dst.count)
        }
        switch dtype {
        case .F32:
            guard let out = dst.baseAddress else { return }
            for i in 0..<src.count { out.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        #if _endian(little)
        case .F16:
            if let s = src.baseAddress, let d = dst.baseAddress { FastKernels.f32ToF16(s, d, count: src.count) }
        case .Q8_0:
            if let s = src.baseAddress, let d = dst.baseAddress { FastKernels.q8_0(s, d, blocks: src.count / 32) }
        case .Q4_0:
            if let s = src.baseAddress, let d = dst.baseAddress { FastKernels.q4_0(s, d, blocks: src.count / 32) }
        #else
        case .F16: HalfPrecision.encodeF16(src, into: dst)
        case .Q8_0: Q8_0Codec.encode(src, into: dst)
        case .Q4_0: Q4_0Codec.encode(src, into: dst)
        #endif
        case .BF16: HalfPrecision.encodeBF16(src, into: dst)
        default: throw .unsupportedTarget(tensor: tensor, dtype: dtype)
        }
    }

    /// Encodes `count` little-endian f32 values read from raw bytes `src` (any alignment, e.g. a
    /// file mapping) as `dtype` into `dst`, like `encode(_:rowLength:to:into:tensor:)`, without a
    /// typed copy for F16, Q8_0 and Q4_0. Returns false when no value can have overflowed `dtype`;
    /// true means `overflow(_:to:)` may find some (exact for F16, Q8_0 and Q4_0; BF16 always true).
    public static func encode(
        f32Bytes src: UnsafeRawBufferPointer, count: Int, rowLength: Int, to dtype: DType,
        into dst: UnsafeMutableRawBufferPointer, tensor: String = ""
    ) throws(QuantError) -> Bool {
        guard count >= 0, src.count >= count * 4 else {
            throw .sizeMismatch(tensor: tensor, expected: count * 4, actual: src.count)
        }
        guard targets.contains(dtype) else { throw .unsupportedTarget(tensor: tensor, dtype: dtype) }
        guard rowLength > 0 ? count % rowLength == 0 : count == 0, rowLength % dtype.blockSize == 0 || count == 0
        else { throw .badRowLength(tensor: tensor, rowLength: rowLength, blockSize: dtype.blockSize) }
        guard let need = dtype.byteCount(elements: count), dst.count == need else {
            throw .sizeMismatch(tensor: tensor, expected: dtype.byteCount(elements: count) ?? -1, actual: dst.count)
        }
        guard count > 0, let s = src.baseAddress, let d = dst.baseAddress else { return false }
        #if _endian(little)
        switch dtype {
        case .F32:
            d.copyMemory(from: s, byteCount: count * 4)
            return false
        case .F16: return FastKernels.f32ToF16(s, d, count: count) > 0
        case .Q8_0: return FastKernels.q8_0(s, d, blocks: count / 32) > 0
        case .Q4_0: return FastKernels.q4_0(s, d, blocks: count / 32) > 0
        default: break
        }
        #endif
        let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { floats.deallocate() }
        for i in 0..<count { floats[i] = Float(bitPattern: src.readLE(i * 4, as: UInt32.self)) }
        try encode(UnsafeBufferPointer(floats), rowLength: rowLength, to: dtype, into: dst, tensor: tensor)
        return dtype != .F32
    }

    /// Array convenience for `encode(_:rowLength:to:into:tensor:)`.
    public static func encode(_ values: [Float], rowLength: Int, to dtype: DType, tensor: String = "") throws(QuantError) -> [UInt8] {
        guard let n = dtype.byteCount(elements: values.count) else {
            throw .badRowLength(tensor: tensor, rowLength: rowLength, blockSize: dtype.blockSize)
        }
        var out = [UInt8](repeating: 0, count: n)
        var failure: QuantError?
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                do throws(QuantError) {
                    try encode(src, rowLength: rowLength, to: dtype, into: dst, tensor: tensor)
                } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Finds the finite values that `dtype` would store as inf or NaN: f16 |x| ≥ 65520; bf16 values
    /// that round past f32's max; for Q8_0 / Q4_0 every finite value of a block whose f16 scale d is
    /// not finite (|max| ≥ 65520·127 resp. 65520·8, or an inf/NaN in the block). `firstIndex` and
    /// `firstValue` name the first such value (for blocks: the block's largest |x|, the cause).
    /// `src.count` must be a multiple of 32 for block types. nil when nothing overflows.
    public static func overflow(_ src: UnsafeBufferPointer<Float>, to dtype: DType) -> RangeOverflow? {
        var report: RangeOverflow?
        func note(_ i: Int, _ n: Int) {
            if report == nil { report = RangeOverflow(count: 0, firstIndex: i, firstValue: src[i]) }
            report?.count += n
        }
        switch dtype {
        case .F16:
            for i in 0..<src.count where src[i].isFinite && abs(src[i]) >= 65520 { note(i, 1) }
        case .BF16:
            for i in 0..<src.count where src[i].isFinite && !bfloat16BitsToFloat(floatToBFloat16Bits(src[i])).isFinite {
                note(i, 1)
            }
        case .Q8_0, .Q4_0:
            // A block whose f16 scale is not finite decodes to inf/NaN: all its finite values are lost.
            let divisor: Float = dtype == .Q8_0 ? 127 : 8
            var start = 0
            while start + 32 <= src.count {
                var amax: Float = 0
                var culprit = start
                var finite = 0
                for j in start..<start + 32 {
                    if src[j].isFinite { finite += 1 }
                    if abs(src[j]) > amax || (src[j].isNaN && !amax.isNaN) {
                        amax = abs(src[j])
                        culprit = j
                    }
                }
                if !halfBitsToFloat(HalfPrecision.f16Bits(amax / divisor)).isFinite, finite > 0 {
                    if report == nil { report = RangeOverflow(count: 0, firstIndex: culprit, firstValue: src[culprit]) }
                    report?.count += finite
                }
                start += 32
            }
        default:
            break
        }
        return report
    }

    /// Array convenience for `overflow(_:to:)`.
    public static func overflow(_ values: [Float], to dtype: DType) -> RangeOverflow? {
        values.withUnsafeBufferPointer { overflow($0, to: dtype) }
    }
}
