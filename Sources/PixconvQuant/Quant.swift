import PixconvCore

/// Errors of converting tensor bytes between element types.
public enum QuantError: Error, CustomStringConvertible, Equatable {
    case unsupported(tensor: String, dtype: DType)
    case badRowLength(tensor: String, rowLength: Int, blockSize: Int)

    public var description: String {
        switch self {
        case let .unsupported(t, d): return "tensor \(t): cannot convert \(d.rawValue) to f32"
        case let .badRowLength(t, n, b): return "tensor \(t): row length \(n) is not a multiple of \(b)"
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
public func dequantize(
    _ src: UnsafeRawBufferPointer, dtype: DType, count: Int, into dst: UnsafeMutableBufferPointer<Float>,
    tensor: String = ""
) throws(QuantError) {
    switch dtype {
    case .F32:
        for i in 0..<count { dst[i] = Float(bitPattern: src.readLE(i * 4, as: UInt32.self)) }
    case .F64:
        for i in 0..<count { dst[i] = Float(Double(bitPattern: src.readLE(i * 8, as: UInt64.self))) }
    case .F16:
        for i in 0..<count { dst[i] = halfBitsToFloat(src.readLE(i * 2, as: UInt16.self)) }
    case .BF16:
        for i in 0..<count { dst[i] = bfloat16BitsToFloat(src.readLE(i * 2, as: UInt16.self)) }
    default:
        throw .unsupported(tensor: tensor, dtype: dtype)
    }
}
