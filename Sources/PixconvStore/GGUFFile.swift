import PixconvCore

/// A GGUF v2/v3 file, memory-mapped and validated in full before any tensor is handed out.
///
/// Enforces everything ggml's reader does (`ggml/src/gguf.cpp`; `formats/store.md`) and more: magic; version 2 or 3; KV and tensor counts that fit the remaining bytes before
/// anything is allocated; strings ≤ 1 GiB, in the file, valid UTF-8; non-empty unique ASCII keys;
/// known value types; bools 0/1; arrays nested ≤ 3 deep; `general.alignment` a UINT32 power of two
/// ≤ 1 MiB (default 32); unique tensor names of 1…63 bytes; n_dims ≤ 4; dims < 2^63 with a
/// non-overflowing element count; a ggml type pixconv reads; rows a whole number of blocks;
/// offsets exactly the running sum of sizes padded to the alignment; zero padding; all data inside
/// the file and no bytes after it.
public final class GGUFFile: TensorSource {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensor infos in file (info) order; shapes in PyTorch order (ggml dims reversed).
    public let tensorsInFileOrder: [TensorInfo]
    /// Tensor infos sorted by name (`TensorSource`).
    public let tensors: [TensorInfo]
    /// Absolute file offset where the tensor data section starts.
    public let dataOffset: Int
    /// End of the tensor-info section (before the alignment padding).
    public let headerEnd: Int

    let mapping: MappedFile
    private let keyIndex: [String: Int]
    private let valueOffsets: [String: Int]
    private let tensorIndex: [String: Int]
    private let tensorOffsets: [Int]  // absolute, in file order

    public static let maxAlignment = 1 << 20

    public init(path: String) throws(StoreError) {
        self.path = path
        do { mapping = try MappedFile(path: path) } catch { throw .file(error) }
        var c = GGUFCursor(file: path, bytes: mapping.bytes)

        // Header.
        try c.need(4, "magic")
        let magic: UInt32 = try c.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw .badMagic(file: path, found: magic) }
        let v = try c.read(UInt32.self, "version")
        if v & 0xFFFF == 0, v != 0 { throw .bigEndian(file: path) }
        guard v == 2 || v == 3 else { throw .unsupportedVersion(file: path, version: v) }
        version = v
        let tensorCountAt = c.offset
        let tensorCount = try c.read(UInt64.self, "tensor count")
        let kvCountAt = c.offset
        let kvCount = try c.read(UInt64.self, "metadata count")
        // Smallest KV: 8-byte key length, 1-byte key, 4-byte type, 1-byte value. Smallest tensor
        // info: 8 + 1 + 4 (n_dims) + 4 (type) + 8 (offset).
        try c.checkCount(kvCount, minimumSize: 14, "metadata", at: kvCountAt)
        try c.checkCount(tensorCount, minimumSize: 25, "tensor", at: tensorCountAt)

        // Metadata.
        var kvs: [(key: String, value: GGUFValue)] = []
        var keys: [String: Int] = [:]
        var valueAt: [String: Int] = [:]
        kvs.reserveCapacity(Int(kvCount))
        for _ in 0..<Int(kvCount) {
            let keyAt = c.offset
            let key = try c.string("key", maxBytes: GGUFCursor.maxKeyBytes)
            guard !key.isEmpty else { throw .badKey(file: path, key: key, offset: keyAt, reason: "empty key") }
            guard key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw .badKey(file: path, key: key, offset: keyAt, reason: "keys must be printable ASCII")
            }
            guard keys[key] == nil else { throw .duplicateKey(file: path, key: key, offset: keyAt) }
            let typeAt = c.offset
            let rawType = try c.read(UInt32.self, "value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .badValueType(file: path, key: key, type: rawType, offset: typeAt)
            }
            valueAt[key] = c.offset
            let value = try c.value(type, key: key)
            keys[key] = kvs.count
            kvs.append((key, value))
        }
        metadata = kvs
        keyIndex = keys
        valueOffsets = valueAt

        // Alignment.
        var align = 32
        if let i = keys["general.alignment"] {
            guard case let .uint32(a) = kvs[i].value else {
                throw .badAlignment(file: path, detail: "type \(kvs[i].value.typeName), expected uint32")
            }
            guard a != 0, a & (a - 1) == 0, Int(a) <= GGUFFile.maxAlignment else {
                throw .badAlignment(file: path, detail: "\(a) is not a power of two in 1…\(GGUFFile.maxAlignment)")
            }
            align = Int(a)
        }
        alignment = align

        // Tensor infos.
        var infos: [TensorInfo] = []
        var rawOffsets: [UInt64] = []
        var names: [String: Int] = [:]
        infos.reserveCapacity(Int(tensorCount))
        for _ in 0..<Int(tensorCount) {
            let infoAt = c.offset
            let name = try c.string("tensor name")
            guard !name.isEmpty, name.utf8.count < 64 else {
                throw .badTensorName(file: path, tensor: name, offset: infoAt, reason: "names must be 1…63 bytes")
            }
            guard names[name] == nil else { throw .duplicateTensor(file: path, tensor: name, offset: infoAt) }
            let dimsAt = c.offset
            let nDims = try c.read(UInt32.self, "n_dims of '\(name)'")
            guard nDims <= 4 else {
                throw .badDimensions(file: path, tensor: name, offset: dimsAt, reason: "n_dims \(nDims) > 4")
            }
            var ne: [Int] = []
            for _ in 0..<Int(nDims) {
                let d = try c.read(UInt64.self, "dims of '\(name)'")
                guard let di = Int(exactly: d), di >= 0 else {
                    throw .badDimensions(file: path, tensor: name, offset: dimsAt, reason: "dimension \(d) ≥ 2^63")
                }
                ne.append(di)
            }
            let typeAt = c.offset
            let typeID = try c.read(UInt32.self, "type of '\(name)'")
            guard let dtype = GGMLType.dtype(of: typeID) else {
                if GGMLType.isKnown(typeID) {
                    throw .unsupportedTensorType(file: path, tensor: name, type: typeID, offset: typeAt)
                }
                throw .badTensorType(file: path, tensor: name, type: typeID, offset: typeAt)
            }
            guard let count = elementCount(ne) else {
                throw .badDimensions(file: path, tensor: name, offset: dimsAt, reason: "element count overflows")
            }
            let row = ne.first ?? 1
            guard row % dtype.blockSize == 0 else {
                throw .badRowLength(file: path, tensor: name, rowLength: row, blockSize: dtype.blockSize)
            }
            guard let size = dtype.byteCount(elements: count) else { throw .sizeOverflow(file: path, tensor: name) }
            let offset = try c.read(UInt64.self, "offset of '\(name)'")
            names[name] = infos.count
            infos.append(TensorInfo(name: name, dtype: dtype, shape: ne.reversed(), byteCount: size))
            rawOffsets.append(offset)
        }
        headerEnd = c.offset

        // Data section: each tensor at exactly the running padded sum, zero padding, nothing after.
        func pad(_ n: Int) -> Int? {
            let (s, o) = n.addingReportingOverflow(align - 1)
            return o ? nil : s / align * align
        }
        guard let start = pad(headerEnd) else { throw .sizeOverflow(file: path, tensor: "") }
        let fileSize = mapping.count
        if infos.isEmpty, fileSize == headerEnd {
            dataOffset = headerEnd  // no tensors: the padding may be left out
        } else {
            guard start <= fileSize else {
                throw .truncated(file: path, offset: fileSize, need: start - fileSize, what: "header padding")
            }
            dataOffset = start
        }
        try GGUFFile.checkZero(mapping.bytes, headerEnd..<dataOffset, file: path)
        var running = 0
        var absolute: [Int] = []
        absolute.reserveCapacity(infos.count)
        for (info, raw) in zip(infos, rawOffsets) {
            guard raw == UInt64(running) else {
                throw .badOffset(file: path, tensor: info.name, offset: raw, expected: UInt64(running))
            }
            guard let padded = pad(info.byteCount) else { throw .sizeOverflow(file: path, tensor: info.name) }
            let (begin, o1) = dataOffset.addingReportingOverflow(running)
            let (end, o2) = begin.addingReportingOverflow(info.byteCount)
            let (paddedEnd, o3) = begin.addingReportingOverflow(padded)
            guard !o1, !o2, !o3 else { throw .sizeOverflow(file: path, tensor: info.name) }
            guard paddedEnd <= fileSize else {
                throw .dataOutOfBounds(file: path, tensor: info.name, end: UInt64(paddedEnd), fileSize: fileSize)
            }
            try GGUFFile.checkZero(mapping.bytes, end..<paddedEnd, file: path)
            absolute.append(begin)
            running += padded
        }
        let dataEnd = dataOffset + running
        guard dataEnd == fileSize else {
            throw .trailingBytes(file: path, offset: dataEnd, count: fileSize - dataEnd)
        }
        tensorsInFileOrder = infos
        tensors = infos.sorted { $0.name < $1.name }
        tensorIndex = names
        tensorOffsets = absolute
    }

    private static func checkZero(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, file: String) throws(StoreError) {
        for i in range where bytes[i] != 0 { throw .nonZeroPadding(file: file, offset: i) }
    }

    // MARK: Tensors

    /// Zero-copy bytes of `name`, kept alive by this file's mapping.
    public func data(for name: String) throws -> TensorData {
        guard let i = tensorIndex[name] else { throw StoreError.missingTensor(file: path, tensor: name) }
        let info = tensorsInFileOrder[i]
        let start = tensorOffsets[i]
        return TensorData(info: info, owner: mapping, bytes: mapping.slice(start..<start + info.byteCount))
    }

    /// Absolute file offset of `name`'s data.
    public func fileOffset(of name: String) -> Int? {
        tensorIndex[name].map { tensorOffsets[$0] }
    }

    /// Position of `name` in info order.
    public func infoIndex(of name: String) -> Int? { tensorIndex[name] }

    /// The raw bytes of the file's header (magic through tensor infos and padding).
    public var headerBytes: UnsafeRawBufferPointer { mapping.slice(0..<dataOffset) }

    // MARK: Metadata

    public func value(_ key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    /// Absolute file offset of `key`'s value bytes.
    public func valueOffset(of key: String) -> Int? { valueOffsets[key] }

    public func requireValue(_ key: String) throws(StoreError) -> GGUFValue {
        guard let v = value(key) else { throw .missingKey(file: path, key: key) }
        return v
    }

    public func string(_ key: String) throws(StoreError) -> String {
        let v = try requireValue(key)
        guard let s = v.stringValue else { throw .wrongKeyType(file: path, key: key, expected: "string", actual: v.typeName) }
        return s
    }

    public func uint32(_ key: String) throws(StoreError) -> UInt32 {
        let v = try requireValue(key)
        guard let u = v.uint32Value else { throw .wrongKeyType(file: path, key: key, expected: "uint32", actual: v.typeName) }
        return u
    }

    public func uint8Array(_ key: String) throws(StoreError) -> [UInt8] {
        let v = try requireValue(key)
        guard case let .array(.uint8(a)) = v else {
            throw .wrongKeyType(file: path, key: key, expected: "array of uint8", actual: v.typeName)
        }
        return a
    }

    public func uint32Array(_ key: String) throws(StoreError) -> [UInt32] {
        let v = try requireValue(key)
        guard case let .array(.uint32(a)) = v else {
            throw .wrongKeyType(file: path, key: key, expected: "array of uint32", actual: v.typeName)
        }
        return a
    }

    public func stringArray(_ key: String) throws(StoreError) -> [String] {
        let v = try requireValue(key)
        guard case let .array(.string(a)) = v else {
            throw .wrongKeyType(file: path, key: key, expected: "array of string", actual: v.typeName)
        }
        return a
    }
}
