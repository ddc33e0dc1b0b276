import PixconvCore

/// Converts a whole tensor to a store type in bounded memory: whole rows are widened to f32 and
/// encoded a chunk at a time, each chunk handed to `sink` in order.
public enum TensorEncoder {
    /// Streams `data` converted to `dtype` through `sink`; returns the values that overflowed
    /// `dtype` (see `Quantizer.overflow`), indices counted over the whole tensor.
    ///
    /// Bytes already of type `dtype` pass through unchanged. The row is the last dimension; block
    /// targets need it to be a multiple of 32. `chunkElements` bounds the f32 scratch size.
    @discardableResult
    public static func stream(
        _ data: TensorData, to dtype: DType, chunkElements: Int = 1 << 20,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> RangeOverflow? {
        let info = data.info
        if info.dtype == dtype {
            try data.withBytes { try sink($0) }
            return nil
        }
        guard info.dtype.isFloatingPoint else { throw QuantError.unsupported(tensor: info.name, dtype: info.dtype) }
        let total = try Quantizer.storedByteCount(shape: info.shape, as: dtype, tensor: info.name)
        let count = info.elementCount
        let row = info.shape.last ?? 1
        if count == 0 || row == 0 { return nil }
        let rowsPerChunk = max(1, chunkElements / row)
        var floats = [Float](repeating: 0, count: min(count, rowsPerChunk * row))
        var encoded = [UInt8](repeating: 0, count: dtype.byteCount(elements: floats.count) ?? 0)
        var report: RangeOverflow?
        var written = 0
        var first = 0  // first element of the chunk
        try data.withBytes { src in
            while first < count {
                let n = min(floats.count, count - first)
                guard let from = info.dtype.byteCount(elements: first), let size = info.dtype.byteCount(elements: n),
                      let outSize = dtype.byteCount(elements: n)
                else { throw QuantError.badRowLength(tensor: info.name, rowLength: row, blockSize: info.dtype.blockSize) }
                let slice = UnsafeRawBufferPointer(rebasing: src[from..<from + size])
                try floats.withUnsafeMutableBufferPointer { (f: inout UnsafeMutableBufferPointer<Float>) throws in
                    try dequantize(slice, dtype: info.dtype, count: n, into: f, tensor: info.name)
                }
                try floats.withUnsafeBufferPointer { f in
                    let part = UnsafeBufferPointer(rebasing: f[0..<n])
                    if let o = Quantizer.overflow(part, to: dtype) {
                        if report == nil { report = RangeOverflow(count: 0, firstIndex: first + o.firstIndex, firstValue: o.firstValue) }
                        report?.count += o.count
                    }
                    try encoded.withUnsafeMutableBytes { e in
                        let out = UnsafeMutableRawBufferPointer(rebasing: e[0..<outSize])
                        try Quantizer.encode(part, rowLength: row, to: dtype, into: out, tensor: info.name)
                        try sink(UnsafeRawBufferPointer(out))
                    }
                }
                written += outSize
                first += n
            }
        }
        guard written == total else { throw QuantError.sizeMismatch(tensor: info.name, expected: total, actual: written) }
        return report
    }

    /// The whole converted tensor in memory (tests and small tensors).
    public static func encode(_ data: TensorData, to dtype: DType) throws -> [UInt8] {
        var out: [UInt8] = []
        try stream(data, to: dtype) { out.append(contentsOf: $0) }
        return out
    }
}
