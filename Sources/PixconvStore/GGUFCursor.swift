import PixconvCore

/// A bounds-checked little-endian reader over a GGUF file's bytes. Every read checks the remaining
/// bytes first; every count is checked against what is left before anything is allocated
/// (ggml `gguf.cpp` `gguf_reader`, made stricter).
struct GGUFCursor {
    let file: String
    let bytes: UnsafeRawBufferPointer
    var offset: Int = 0

    /// Caps that bound the work a hostile header can cause.
    static let maxStringBytes = 1 << 30  // ggml: strings over 1 GiB are rejected
    static let maxKeyBytes = 65535  // spec: keys ≤ 65535 bytes
    static let maxArrayDepth = 3  // array of array of array; deeper is rejected

    init(file: String, bytes: UnsafeRawBufferPointer) {
        self.file = file
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ what: String) throws(StoreError) {
        guard n >= 0, n <= remaining else {
            throw .truncated(file: file, offset: offset, need: n - max(0, remaining), what: what)
        }
    }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(StoreError) -> T {
        try need(MemoryLayout<T>.size, what)
        let v = bytes.readLE(offset, as: T.self)
        offset += MemoryLayout<T>.size
        return v
    }

    /// Checks that `count` items of at least `minimumSize` bytes each can fit in what is left.
    mutating func checkCount(_ count: UInt64, minimumSize: Int, _ what: String, at position: Int) throws(StoreError) {
        let (total, overflow) = count.multipliedReportingOverflow(by: UInt64(max(minimumSize, 1)))
        if overflow || total > UInt64(remaining) {
            throw .countTooLarge(file: file, what: what, count: count, offset: position)
        }
    }

    /// A GGUF string: u64 length, then that many bytes of valid UTF-8.
    mutating func string(_ what: String, maxBytes: Int = GGUFCursor.maxStringBytes) throws(StoreError) -> String {
        let start = offset
        let length = try read(UInt64.self, what)
        guard length <= UInt64(maxBytes) else {
            throw .badString(file: file, offset: start, reason: "\(what) length \(length) exceeds \(maxBytes)")
        }
        guard length <= UInt64(remaining) else {
            throw .badString(file: file, offset: start, reason: "\(what) length \(length) runs past the end of the file")
        }
        let n = Int(length)
        let raw = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        guard let s = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw .badString(file: file, offset: start, reason: "\(what) is not valid UTF-8")
        }
        offset += n
        return s
    }

    /// One value of `type`; arrays recurse up to `maxArrayDepth`.
    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws(StoreError) -> GGUFValue {
        let at = offset
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, key))
        case .int8: return .int8(try read(Int8.self, key))
        case .uint16: return .uint16(try read(UInt16.self, key))
        case .int16: return .int16(try read(Int16.self, key))
        case .uint32: return .uint32(try read(UInt32.self, key))
        case .int32: return .int32(try read(Int32.self, key))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, key)))
        case .uint64: return .uint64(try read(UInt64.self, key))
        case .int64: return .int64(try read(Int64.self, key))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, key)))
        case .bool:
            let b = try read(UInt8.self, key)
            guard b <= 1 else { throw .badBool(file: file, key: key, value: b, offset: at) }
            return .bool(b == 1)
        case .string: return .string(try string("value of '\(key)'"))
        case .array: return .array(try array(key: key, depth: depth + 1))
        }
    }

    /// An array body: u32 element type, u64 count, elements.
    mutating func array(key: String, depth: Int) throws(StoreError) -> GGUFArray {
        let at = offset
        guard depth <= GGUFCursor.maxArrayDepth else { throw .arrayTooDeep(file: file, key: key, offset: at) }
        let rawType = try read(UInt32.self, key)
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw .badValueType(file: file, key: key, type: rawType, offset: at)
        }
        let countAt = offset
        let count = try read(UInt64.self, key)
        try checkCount(count, minimumSize: type.minimumSize, "array '\(key)'", at: countAt)
        let n = Int(count)  // fits: n ≤ remaining bytes
        func fixed<T: FixedWidthInteger>(_: T.Type) throws(StoreError) -> [T] {
            let size = MemoryLayout<T>.size
            var out = [T](repeating: 0, count: n)
            for i in 0..<n { out[i] = bytes.readLE(offset + i * size, as: T.self) }
            offset += n * size
            return out
        }
        switch type {
        case .uint8: return .uint8(try fixed(UInt8.self))
        case .int8: return .int8(try fixed(Int8.self))
        case .uint16: return .uint16(try fixed(UInt16.self))
        case .int16: return .int16(try fixed(Int16.self))
        case .uint32: return .uint32(try fixed(UInt32.self))
        case .int32: return .int32(try fixed(Int32.self))
        case .uint64: return .uint64(try fixed(UInt64.self))
        case .int64: return .int64(try fixed(Int64.self))
        case .float32: return .float32(try fixed(UInt32.self).map { Float(bitPattern: $0) })
        case .float64: return .float64(try fixed(UInt64.self).map { Double(bitPattern: $0) })
        case .bool:
            let raw = try fixed(UInt8.self)
            if let bad = raw.firstIndex(where: { $0 > 1 }) {
                throw .badBool(file: file, key: key, value: raw[bad], offset: offset - n + bad)
            }
            return .bool(raw.map { $0 == 1 })
        case .string:
            var out: [String] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try string("element of '\(key)'")) }
            return .string(out)
        case .array:
            guard depth < GGUFCursor.maxArrayDepth else { throw .arrayTooDeep(file: file, key: key, offset: at) }
            var out: [GGUFArray] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try array(key: key, depth: depth + 1)) }
            return .array(out)
        }
    }
}
