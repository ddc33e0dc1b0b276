import PixconvCore

/// The validated header of a safetensors file: tensor entries with absolute byte ranges, and the
/// `__metadata__` map.
///
/// Matches the checks of safetensors' `SafeTensors::read_metadata` / `Metadata::validate`
/// (`safetensors/src/tensor.rs`; `formats/safetensors.md`) and is stricter: duplicate
/// keys, unknown or missing fields in a tensor entry, numbers that are not exact non-negative
/// integers ≤ 2^53 (the schema allows 48 bits), a byte-order mark or NUL padding, and more than
/// `Limits.maxTensors` tensors are all errors. Leading and trailing whitespace around the JSON
/// object is accepted, as the reference reader does since PR #686.
public struct SafetensorsHeader: Sendable {
    /// Bounds for hostile headers.
    public struct Limits: Sendable {
        /// `MAX_HEADER_SIZE` in the reference.
        public var maxHeaderBytes: Int = 100_000_000
        /// The reference has no cap; 200,000 is far above real models (PixArt's T5 has ~220).
        public var maxTensors: Int = 200_000
        /// JSON values in the header; bounds time and memory before tensors are counted. A tensor
        /// entry of rank r takes 6 + r values, so 2,500,000 admits `maxTensors` of rank ≤ 6.
        public var maxJSONValues: Int = 2_500_000

        public init() {}
    }

    /// One tensor: its info and absolute byte range in the file.
    public struct Entry: Sendable, Equatable {
        public let info: TensorInfo
        public let range: Range<Int>
    }

    /// Tensor entries sorted by name.
    public let entries: [Entry]
    public let metadata: [String: String]
    /// N, the JSON length from the 8-byte prefix.
    public let headerLength: Int
    /// 8 + N: where the byte buffer starts.
    public let dataStart: Int

    /// Safetensors dtype spellings pixconv reads (all of `DType` except ggml's block types).
    public static func dtype(named name: String) -> DType? {
        guard let d = DType(rawValue: name), !d.isQuantized else { return nil }
        return d
    }

    /// Validates `file` (the whole file's bytes) and returns its header; nothing is read past
    /// the header before the whole layout has been checked.
    public static func parse(_ file: UnsafeRawBufferPointer, path: String, limits: Limits = Limits())
        throws(ReaderError) -> SafetensorsHeader
    {
        let size = file.count
        guard size >= 8 else { throw .headerTooSmall(path: path, fileSize: size) }
        let prefix: UInt64 = file.readLE(0)
        guard prefix <= UInt64(limits.maxHeaderBytes) else {
            throw .headerTooLarge(path: path, length: prefix, limit: limits.maxHeaderBytes)
        }
        let n = Int(prefix)
        guard n <= size - 8 else { throw .headerPastEnd(path: path, length: n, fileSize: size) }
        let header = UnsafeRawBufferPointer(rebasing: file[8..<(8 + n)])
        if let bad = StrictJSON.firstInvalidUTF8(header) { throw .headerNotUTF8(path: path, offset: 8 + bad) }

        var first = 0
        while first < n, [0x20, 0x09, 0x0A, 0x0D].contains(header[first]) { first += 1 }
        guard first < n, header[first] == UInt8(ascii: "{") else { throw .headerNotObject(path: path, offset: 8 + first) }

        var jsonLimits = StrictJSON.Limits()
        jsonLimits.maxBytes = limits.maxHeaderBytes
        jsonLimits.maxValues = limits.maxJSONValues
        let root: JSONValue
        do {
            root = try StrictJSON.parse(header, limits: jsonLimits, baseOffset: 8)
        } catch {
            if case let .duplicateKey(key) = error.kind { throw .duplicateKey(path: path, key: key, offset: error.offset) }
            throw .headerNotJSON(path: path, error: error)
        }
        guard case let .object(top) = root else { throw .headerNotObject(path: path, offset: 8 + first) }

        var metadata: [String: String] = [:]
        var unsorted: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for member in top.members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member, path: path)
                continue
            }
            guard unsorted.count < limits.maxTensors else { throw .tooManyTensors(path: path, limit: limits.maxTensors) }
            unsorted.append(try parseEntry(member, path: path))
        }

        // `Metadata::validate`: sorted by offsets, the entries must tile [0, last end) exactly.
        let byOffset = unsorted.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin = 0
        var entries: [Entry] = []
        entries.reserveCapacity(byOffset.count)
        for t in byOffset {
            guard t.end >= t.begin else { throw .offsetsReversed(path: path, tensor: t.name, begin: t.begin, end: t.end) }
            guard t.begin == expectedBegin else {
                throw .offsetsNotContiguous(path: path, tensor: t.name, expectedBegin: expectedBegin, begin: t.begin)
            }
            guard let count = elementCount(t.shape), let bytes = t.dtype.byteCount(elements: count) else {
                throw .shapeOverflow(path: path, tensor: t.name, shape: t.shape)
            }
            guard t.end - t.begin == bytes else {
                throw .sizeMismatch(path: path, tensor: t.name, expected: bytes, actual: t.end - t.begin)
            }
            expectedBegin = t.end
            let info = TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, byteCount: bytes)
            // Offsets are ≤ 2^53 and 8 + n ≤ file size, so these sums cannot overflow.
            entries.append(Entry(info: info, range: (8 + n + t.begin)..<(8 + n + t.end)))
        }
        let (dataEnd, overflow) = (8 + n).addingReportingOverflow(expectedBegin)
        guard !overflow, dataEnd <= size else { throw .truncated(path: path, dataEnd: dataEnd, fileSize: size) }
        guard dataEnd == size else { throw .trailingBytes(path: path, dataEnd: dataEnd, fileSize: size) }

        entries.sort { $0.info.name < $1.info.name }
        return SafetensorsHeader(entries: entries, metadata: metadata, headerLength: n, dataStart: 8 + n)
    }

    private static func parseMetadata(_ member: JSONObject.Member, path: String) throws(ReaderError) -> [String: String] {
        guard case let .object(map) = member.value else { throw .metadataNotObject(path: path, offset: member.offset) }
        var metadata: [String: String] = [:]
        for m in map.members {
            guard case let .string(s) = m.value else { throw .metadataNotString(path: path, key: m.key, offset: m.offset) }
            metadata[m.key] = s
        }
        return metadata
    }

    private static func parseEntry(_ member: JSONObject.Member, path: String)
        throws(ReaderError) -> (name: String, dtype: DType, shape: [Int], begin: Int, end: Int)
    {
        let name = member.key
        guard case let .object(entry) = member.value else {
            throw .entryNotObject(path: path, tensor: name, offset: member.offset)
        }
        for field in entry.members where !["dtype", "shape", "data_offsets"].contains(field.key) {
            throw .unknownField(path: path, tensor: name, field: field.key, offset: field.offset)
        }
        guard let dtypeMember = entry.member("dtype") else {
            throw .missingField(path: path, tensor: name, field: "dtype", offset: member.offset)
        }
        guard case let .string(dtypeName) = dtypeMember.value, let dtype = dtype(named: dtypeName) else {
            throw .unknownDType(path: path, tensor: name, dtype: dtypeMember.value.string ?? dtypeMember.value.kindName,
                                offset: dtypeMember.offset)
        }
        let shape = try integers(entry, "shape", count: nil, tensor: name, at: member.offset, path: path)
        let offsets = try integers(entry, "data_offsets", count: 2, tensor: name, at: member.offset, path: path)
        return (name, dtype, shape, offsets[0], offsets[1])
    }

    /// An array of exact integers in 0...2^53 (with exactly `count` elements when given).
    private static func integers(
        _ entry: JSONObject, _ field: String, count: Int?, tensor: String, at offset: Int, path: String
    ) throws(ReaderError) -> [Int] {
        guard let member = entry.member(field) else {
            throw .missingField(path: path, tensor: tensor, field: field, offset: offset)
        }
        guard case let .array(items) = member.value, count == nil || items.count == count else {
            throw .badNumber(path: path, tensor: tensor, field: field, offset: member.offset)
        }
        var values: [Int] = []
        values.reserveCapacity(items.count)
        for item in items {
            guard let v = item.number?.nonNegativeInteger() else {
                throw .badNumber(path: path, tensor: tensor, field: field, offset: member.offset)
            }
            values.append(v)
        }
        return values
    }
}
