import PixconvCore

/// Errors of converting tensor bytes between element types.
public enum QuantError: Error, CustomStringConvertible, Equatable {
    case unsupported(tensor: String, dtype: DType)
    case badRowLength(tensor: String, rowLength: Int, blockSize: Int)
    case unsupportedTarget(tensor: String, dtype: DType)
    case sizeMismatch(tensor: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .unsupported(t, d): return "tensor \(t): cannot convert \(d.rawValue) to f32"
        case let .badRowLength(t, n, b): return "tensor \(t): row length \(n) is not a multiple of \(b)"
        case let .unsupportedTarget(t, d): return "tensor \(t): cannot quantize to \(d.rawValue)"
        case let .sizeMismatch(t, e, a): return "tensor \(t): expected \(e) bytes, got \(a)"
        }
    }
}

/// Widens any floating-point tensor (plain or block-quantized) to f32, in row-major order.
public func dequantizeToFloat(_ data: TensorData) throws -> [Float] {
    let n = data.info.elementCount
    var out = [Float](repeating: 0, count: n)
    try out.withUnsafeMutableBufferPointer { (dst: inout UnsafeMutableBufferPointer<Float>) throws in
        try dequantize(data.bytes, dtype: data.info.dtype, count: n, into: dst, tensor: data.info.name)
    }
    return out
}

/// Widens `count` values of `dtype` stored in `src` into `dst` (which holds at least `count` floats).
/// Block types match gguf-py 0.19.0 `gguf.quants.dequantize` bit for bit; `count` must then be a
/// multiple of 32 (blocks never span rows, since ggml rows are whole blocks).
public func dequantize(
    _ src: UnsafeRawBufferPointer, dtype: DType, count: Int, into dst: UnsafeMutableBufferPointer<Float>,
    tensor: String = ""
) throws(QuantError) {
    guard count >= 0, dst.count >= count else {
        throw .sizeMismatch(tensor: tensor, expected: count * 4, actual: dst.count * 4)
    }
    if dtype.isQuantized || dtype.isFloatingPoint {
        guard count % dtype.blockSize == 0 else {
            throw .badRowLength(tensor: tensor, rowLength: count, blockSize: dtype.blockSize)
        }
        guard let need = dtype.byteCount(elements: count), src.count >= need else {
            throw .sizeMismatch(tensor: tensor, expected: dtype.byteCount(elements: count) ?? -1, actual: src.count)
        }
    }
    switch dtype {
    case .F32:
        #if _endian(little)
        if count > 0, let s = src.baseAddress, let d = dst.baseAddress {
            UnsafeMutableRawPointer(d).copyMemory(from: s, byteCount: count * 4)
        }
        #else
        for i in 0..<count { dst[i] = Float(bitPattern: src.readLE(i * 4, as: UInt32.self)) }
        #endif
    case .F64:
        for i in 0..<count { dst[i] = Float(Double(bitPattern: src.readLE(i * 8, as: UInt64.self))) }
    case .F16:
        #if _endian(little)
        if count > 0, let s = src.baseAddress, let d = dst.baseAddress { FastKernels.f16ToF32(s, d, count: count) }
        #else
        HalfPrecision.decodeF16(src, count: count, into: dst)
        #endif
    case .BF16:
        HalfPrecision.decodeBF16(src, count: count, into: dst)
    case .Q8_0:
        Q8_0Codec.decode(src, count: count, into: dst)
    case .Q4_0:
        Q4_0Codec.decode(src, count: count, into: dst)
    case .Q4_1, .Q5_0, .Q5_1:
        LegacyBlockDecoder.decode(src, dtype: dtype, count: count, into: dst)
    default:
        throw .unsupported(tensor: tensor, dtype: dtype)
    }
}
