import PixconvCore

/// Streams a GGUF v3 file to disk through `AtomicFile` (temporary file, fsync, rename): the whole
/// header is built from the tensor infos given up front, then each tensor's bytes are appended in
/// info order, in as many pieces as the caller likes; the model is never held in memory.
///
/// Layout as ggml `gguf.cpp` and gguf-py `gguf_writer.py` expect: magic, version 3, counts, KVs in
/// the given order (`general.alignment` added when missing), tensor infos (dims reversed from the
/// PyTorch shape), zero padding to the alignment, then tensors at offsets equal to the running sum
/// of their sizes padded to the alignment, each followed by zero padding. Output is a pure function
/// of the inputs (no timestamps, no hash-map order).
public final class GGUFWriter {
    public let path: String
    public let alignment: Int
    public let tensors: [TensorInfo]
    /// Size of the header including its padding: where the tensor data starts.
    public let dataOffset: Int
    /// Size of the finished file.
    public let totalSize: Int
    /// CRC-32 of each finished tensor's bytes, in info order.
    public private(set) var tensorCRC32s: [UInt32] = []

    private let file: AtomicFile
    private let kvsAlignmentAdded: Bool
    private let patchCRCKey: String?
    private var current = 0  // index of the tensor being written
    private var writtenInCurrent = 0
    private var crc: UInt32 = 0
    private var finished = false

    /// Validates everything, then writes the header. `metadata` must not repeat keys; if it holds
    /// `general.alignment` it must be the UINT32 `alignment`. Tensor names must be unique, 1…63
    /// bytes; shapes ≤ 4 dims; types with a ggml id; rows whole blocks; `byteCount` consistent.
    /// `patchCRCKey`: a UINT32 KV whose value is replaced by the CRC-32 of the whole header as
    /// written with that value zeroed (see `formats/store.md`).
    public init(
        path: String, metadata: [(key: String, value: GGUFValue)], tensors: [TensorInfo],
        alignment: Int = 64, replace: Bool = true, patchCRCKey: String? = nil
    ) throws {
        self.path = path
        self.alignment = alignment
        self.tensors = tensors
        func fail(_ reason: String) -> StoreError { .badWriterInput(file: path, reason: reason) }
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment % 8 == 0, alignment <= GGUFFile.maxAlignment else {
            throw fail("alignment \(alignment) must be a power of two, multiple of 8, ≤ 1 MiB")
        }
        var kvs = metadata
        if let a = kvs.first(where: { $0.key == "general.alignment" }) {
            guard a.value == .uint32(UInt32(alignment)) else { throw fail("general.alignment \(a.value) ≠ \(alignment)") }
        } else {
            kvs.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        var seenKeys = Set<String>()
        for (key, value) in kvs {
            guard !key.isEmpty, key.utf8.count <= 65535, key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw fail("bad key '\(key)'")
            }
            guard seenKeys.insert(key).inserted else { throw fail("duplicate key '\(key)'") }
            try GGUFWriter.checkDepth(value, key: key, file: path)
        }
        if let k = patchCRCKey, kvs.first(where: { $0.key == k })?.value.uint32Value == nil {
            throw fail("'\(k)' must be a uint32 key to hold the header CRC")
        }

        let (header, start, offset) = try GGUFWriter.header(kvs: kvs, tensors: tensors, alignment: alignment,
                                                            patchCRCKey: patchCRCKey, path: path)
        self.kvsAlignmentAdded = kvs.count != metadata.count
        self.patchCRCKey = patchCRCKey
        dataOffset = start
        let (total, o) = start.addingReportingOverflow(offset)
        guard !o else { throw fail("file too large") }
        totalSize = total
        file = try AtomicFile(path: path, replace: replace, expectedSize: total)
        try file.write(header)
        try skipEmptyTensors()
    }

    /// Appends the next bytes of the current tensor (tensors in info order). A piece may not run
    /// past the current tensor's end.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw StoreError.writerState(file: path, reason: "writer already finished") }
        guard current < tensors.count else {
            throw StoreError.writerState(file: path, reason: "all \(tensors.count) tensors are already written")
        }
        let t = tensors[current]
        let (after, o) = writtenInCurrent.addingReportingOverflow(bytes.count)
        guard !o, after <= t.byteCount else {
            throw StoreError.tensorSizeMismatch(file: path, tensor: t.name, expected: t.byteCount, actual: o ? Int.max : after)
        }
        try file.write(bytes)
        crc = crc32(bytes, continuing: crc)
        writtenInCurrent = after
        if writtenInCurrent == t.byteCount { try finishTensor() }
    }

    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Writes one whole tensor; it must be the next one, named `name`, with exactly its byte count.
    public func writeTensor(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard current < tensors.count, writtenInCurrent == 0, tensors[current].name == name else {
            let next = current < tensors.count ? tensors[current].name : "(none)"
            throw StoreError.writerState(file: path, reason: "tensor '\(name)' written out of order; next is '\(next)'")
        }
        guard bytes.count == tensors[current].byteCount else {
            throw StoreError.tensorSizeMismatch(file: path, tensor: name, expected: tensors[current].byteCount, actual: bytes.count)
        }
        try append(bytes)
    }

    /// Name of the tensor the next `append` continues, or nil when all are written.
    public var nextTensor: String? { current < tensors.count ? tensors[current].name : nil }

    /// Checks that every tensor is complete, then commits (fsync + rename). Nothing appears at
    /// `path` unless this succeeds.

    /// The header bytes (padded to `alignment`) and the data offset.
    static func header(
        kvs: [(key: String, value: GGUFValue)], tensors: [TensorInfo], alignment: Int, patchCRCKey: String?, path: String
    ) throws -> (bytes: [UInt8], dataOffset: Int, dataSize: Int) {
        var header: [UInt8] = []
        GGUFWriter.put(UInt32(0x4655_4747), &header)
        GGUFWriter.put(UInt32(3), &header)
        GGUFWriter.put(UInt64(tensors.count), &header)
        GGUFWriter.put(UInt64(kvs.count), &header)
        var crcValueAt: Int?
        for (key, value) in kvs {
            GGUFWriter.putString(key, &header)
            GGUFWriter.put(value.type.rawValue, &header)
            if key == patchCRCKey {
                crcValueAt = header.count
                GGUFWriter.put(UInt32(0), &header)
            } else {
                GGUFWriter.putValue(value, &header)
            }
        }
        var seenNames = Set<String>()
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name.utf8.count < 64 else { throw StoreError.badWriterInput(file: path, reason: "tensor name '\(t.name)' must be 1…63 bytes") }
            guard seenNames.insert(t.name).inserted else { throw StoreError.badWriterInput(file: path, reason: "duplicate tensor '\(t.name)'") }
            guard t.shape.count <= 4 else { throw StoreError.badWriterInput(file: path, reason: "tensor '\(t.name)' has \(t.shape.count) dims (at most 4)") }
            guard let typeID = GGMLType.id(of: t.dtype) else { throw StoreError.badWriterInput(file: path, reason: "tensor '\(t.name)': GGUF cannot hold \(t.dtype)") }
            guard let n = elementCount(t.shape), (t.shape.last ?? 1) % t.dtype.blockSize == 0,
                  let size = t.dtype.byteCount(elements: n), size == t.byteCount
            else { throw StoreError.badWriterInput(file: path, reason: "tensor '\(t.name)': shape \(t.shape) does not fit \(t.dtype) in \(t.byteCount) bytes") }
            GGUFWriter.putString(t.name, &header)
            GGUFWriter.put(UInt32(t.shape.count), &header)
            for d in t.shape.reversed() { GGUFWriter.put(UInt64(d), &header) }
            GGUFWriter.put(typeID, &header)
            GGUFWriter.put(UInt64(offset), &header)
            guard let padded = GGUFWriter.padded(size, alignment) else { throw StoreError.badWriterInput(file: path, reason: "tensor '\(t.name)' too large") }
            let (next, o) = offset.addingReportingOverflow(padded)
            guard !o else { throw StoreError.badWriterInput(file: path, reason: "tensors too large") }
            offset = next
        }
        guard let start = GGUFWriter.padded(header.count, alignment) else { throw StoreError.badWriterInput(file: path, reason: "header too large") }
        header += [UInt8](repeating: 0, count: start - header.count)
        if let at = crcValueAt {
            let value = crc32(header)
            withUnsafeBytes(of: value.littleEndian) { for i in 0..<4 { header[at + i] = $0[i] } }
        }
        return (header, start, offset)
    }

    /// Rewrites the header in place with new values for some keys (same types and sizes: e.g. a
    /// checksum array filled in after the data), before `finish()`.
    public func rewriteHeader(metadata: [(key: String, value: GGUFValue)]) throws {
        var kvs = metadata
        if kvsAlignmentAdded { kvs.append(("general.alignment", .uint32(UInt32(alignment)))) }
        let (bytes, start, _) = try GGUFWriter.header(kvs: kvs, tensors: tensors, alignment: alignment,
                                                      patchCRCKey: patchCRCKey, path: path)
        guard start == dataOffset else {
            throw StoreError.writerState(file: path, reason: "rewritten header changes size (\(start) ≠ \(dataOffset))")
        }
        try file.overwrite(bytes, at: 0)
    }

    public func finish() throws {
        guard !finished else { return }
        guard current == tensors.count else {
            let t = tensors[current]
            throw StoreError.tensorSizeMismatch(file: path, tensor: t.name, expected: t.byteCount, actual: writtenInCurrent)
        }
        guard file.bytesWritten == totalSize else {
            throw StoreError.writerState(file: path, reason: "wrote \(file.bytesWritten) bytes, planned \(totalSize)")
        }
        try file.commit()
        finished = true
    }

    private func finishTensor() throws {
        let t = tensors[current]
        if let padded = GGUFWriter.padded(t.byteCount, alignment) { try file.writeZeros(padded - t.byteCount) }
        tensorCRC32s.append(crc)
        current += 1
        writtenInCurrent = 0
        crc = 0
        try skipEmptyTensors()
    }

    private func skipEmptyTensors() throws {
        while current < tensors.count, tensors[current].byteCount == 0 {
            tensorCRC32s.append(0)
            current += 1
        }
    }

    // MARK: Encoding

    static func padded(_ n: Int, _ align: Int) -> Int? {
        let (s, o) = n.addingReportingOverflow(align - 1)
        return o ? nil : s / align * align
    }

    static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func putString(_ s: String, _ out: inout [UInt8]) {
        put(UInt64(s.utf8.count), &out)
        out.append(contentsOf: s.utf8)
    }

    static func putValue(_ v: GGUFValue, _ out: inout [UInt8]) {
        switch v {
        case let .uint8(x): put(x, &out)
        case let .int8(x): put(x, &out)
        case let .uint16(x): put(x, &out)
        case let .int16(x): put(x, &out)
        case let .uint32(x): put(x, &out)
        case let .int32(x): put(x, &out)
        case let .float32(x): put(x.bitPattern, &out)
        case let .bool(x): out.append(x ? 1 : 0)
        case let .string(s): putString(s, &out)
        case let .uint64(x): put(x, &out)
        case let .int64(x): put(x, &out)
        case let .float64(x): put(x.bitPattern, &out)
        case let .array(a): putArray(a, &out)
        }
    }

    static func putArray(_ a: GGUFArray, _ out: inout [UInt8]) {
        put(a.elementType.rawValue, &out)
        put(UInt64(a.count), &out)
        switch a {
        case let .uint8(x): out.append(contentsOf: x)
        case let .int8(x): x.forEach { put($0, &out) }
        case let .uint16(x): x.forEach { put($0, &out) }
        case let .int16(x): x.forEach { put($0, &out) }
        case let .uint32(x): x.forEach { put($0, &out) }
        case let .int32(x): x.forEach { put($0, &out) }
        case let .float32(x): x.forEach { put($0.bitPattern, &out) }
        case let .bool(x): x.forEach { out.append($0 ? 1 : 0) }
        case let .string(x): x.forEach { putString($0, &out) }
        case let .uint64(x): x.forEach { put($0, &out) }
        case let .int64(x): x.forEach { put($0, &out) }
        case let .float64(x): x.forEach { put($0.bitPattern, &out) }
        case let .array(x): x.forEach { putArray($0, &out) }
        }
    }

    private static func checkDepth(_ v: GGUFValue, key: String, file: String) throws {
        func depth(_ a: GGUFArray) -> Int {
            if case let .array(inner) = a { return 1 + (inner.map(depth).max() ?? 0) }
            return 1
        }
        if case let .array(a) = v, depth(a) > GGUFCursor.maxArrayDepth {
            throw StoreError.badWriterInput(file: file, reason: "key '\(key)' nests arrays more than \(GGUFCursor.maxArrayDepth) deep")
        }
    }
}
