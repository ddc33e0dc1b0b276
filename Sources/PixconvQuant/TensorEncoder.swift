import PixconvCore

/// Converts a whole tensor to a store type in bounded memory: whole rows are encoded a chunk at a
/// time, each chunk handed to `sink` in order. f32 sources are encoded straight from their bytes
/// (a file mapping) by the C kernels for F16 and Q8_0; other sources are widened to f32 a chunk at
/// a time first.
public enum TensorEncoder {
    /// Streams `data` converted to `dtype` through `sink`; returns the values that overflowed
    /// `dtype` (see `Quantizer.overflow`), indices counted over the whole tensor.
    ///
    /// Bytes already of type `dtype` pass through unchanged. The row is the last dimension; block
    /// targets need it to be a multiple of 32. `chunkElements` bounds the scratch size (whole rows,
    /// at least one). `releaseInput`: when the bytes are a slice of a `MappedFile`, drop each
    /// chunk's pages from this process once it is encoded (`MappedFile.dropPages`), so that a
    /// conversion's resident memory does not grow with the input. `consumed` is called with each
    /// chunk's source bytes once they are encoded and sent.
    @discardableResult
    public static func stream(
        _ data: TensorData, to dtype: DType, chunkElements: Int = 1 << 18, releaseInput: Bool = false,
        consumed: ((UnsafeRawBufferPointer) -> Void)? = nil, sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> RangeOverflow? {
        let info = data.info
        let mapped = releaseInput ? data.owner as? MappedFile : nil
        if info.dtype == dtype {
            try data.withBytes { bytes in
                try sink(bytes)
                mapped?.dropPages(of: bytes, margin: MappedFile.faultAroundMargin)
                consumed?(bytes)
            }
            return nil
        }
        guard info.dtype.isFloatingPoint else { throw QuantError.unsupported(tensor: info.name, dtype: info.dtype) }
        let total = try Quantizer.storedByteCount(shape: info.shape, as: dtype, tensor: info.name)
        let count = info.elementCount
        let row = info.shape.last ?? 1
        if count == 0 || row == 0 { return nil }
        let rowsPerChunk = max(1, chunkElements / row)
        let chunk = min(count, rowsPerChunk * row)
        guard let chunkBytes = dtype.byteCount(elements: chunk) else {
            throw QuantError.badRowLength(tensor: info.name, rowLength: row, blockSize: dtype.blockSize)
        }
        // Uninitialised scratch: every byte used is written first. f32 values only when needed.
        let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { encoded.deallocate() }
        var scratch: UnsafeMutableBufferPointer<Float>?
        defer { scratch?.deallocate() }
        func floats(_ n: Int) -> UnsafeMutableBufferPointer<Float> {
            let f = scratch ?? UnsafeMutableBufferPointer<Float>.allocate(capacity: chunk)
            scratch = f
            return UnsafeMutableBufferPointer(rebasing: f[0..<n])
        }
        var report: RangeOverflow?
        var written = 0
        var first = 0  // first element of the chunk
        try data.withBytes { src in
            while first < count {
                let n = min(chunk, count - first)
                guard let from = info.dtype.byteCount(elements: first), let size = info.dtype.byteCount(elements: n),
                      let outSize = dtype.byteCount(elements: n)
                else { throw QuantError.badRowLength(tensor: info.name, rowLength: row, blockSize: info.dtype.blockSize) }
                let slice = UnsafeRawBufferPointer(rebasing: src[from..<from + size])
                let out = UnsafeMutableRawBufferPointer(rebasing: encoded[0..<outSize])
                var values: UnsafeMutableBufferPointer<Float>?
                let mayOverflow: Bool
                if info.dtype == .F32 {
                    mayOverflow = try Quantizer.encode(f32Bytes: slice, count: n, rowLength: row, to: dtype, into: out,
                                                       tensor: info.name)
                } else {
                    let part = floats(n)
                    try dequantize(slice, dtype: info.dtype, count: n, into: part, tensor: info.name)
                    try Quantizer.encode(UnsafeBufferPointer(part), rowLength: row, to: dtype, into: out, tensor: info.name)
                    values = part
                    mayOverflow = true
                }
                if mayOverflow {
                    let part = try values ?? {
                        let part = floats(n)
                        try dequantize(slice, dtype: info.dtype, count: n, into: part, tensor: info.name)
                        return part
                    }()
                    if let o = Quantizer.overflow(UnsafeBufferPointer(part), to: dtype) {
                        if report == nil { report = RangeOverflow(count: 0, firstIndex: first + o.firstIndex, firstValue: o.firstValue) }
                        report?.count += o.count
                    }
                }
                try sink(UnsafeRawBufferPointer(out))
                mapped?.dropPages(of: slice)
                consumed?(slice)
                written += outSize
                first += n
            }
            // Fault-around also mapped pages just outside the tensor (of tensors done earlier).
            mapped?.dropPages(of: src, margin: MappedFile.faultAroundMargin)
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
