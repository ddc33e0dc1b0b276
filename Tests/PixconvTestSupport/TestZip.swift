import PixconvCore

/// Zip archives built entry by entry (APPNOTE.TXT 4.3: local headers, central directory, end
/// record, optional ZIP64 end record and locator), independent of pixconv's `ZipArchive`; every
/// field can be bent to make malformed archives. Stored entries get correct CRCs unless `crc` says
/// otherwise. Central offsets and the end record count from the start of the archive proper, after
/// `prefix`.
public struct TestZip {
    /// One entry: its local header and data, and its central directory record.
    public struct Item {
        public var name: String
        /// The bytes as stored (compressed bytes for method 8).
        public var data: [UInt8]
        public var method: UInt16
        public var flags: UInt16
        /// Declared uncompressed size; `data.count` when nil.
        public var uncompressedSize: Int?
        /// Declared CRC-32; the CRC of `data` when nil.
        public var crc: UInt32?
        /// The name in the local header; `name` when nil.
        public var localName: String?
        /// Points the central record at another entry's local header (an index into `items`).
        public var localOffsetOf: Int?
        /// Points the central record at this offset (in the archive proper); wins over `localOffsetOf`.
        public var localOffset: Int?
        /// Declared compressed size; `data.count` when nil.
        public var compressedSize: Int?
        /// Central sizes and offset as 0xFFFFFFFF with the values in a ZIP64 extra field (as miniz
        /// writes entries past 4 GiB).
        public var zip64Extra: Bool

        public init(name: String, data: [UInt8], method: UInt16 = 0, flags: UInt16 = 0, uncompressedSize: Int? = nil,
                    crc: UInt32? = nil, localName: String? = nil, localOffsetOf: Int? = nil, localOffset: Int? = nil,
                    compressedSize: Int? = nil, zip64Extra: Bool = false) {
            self.name = name
            self.data = data
            self.method = method
            self.flags = flags
            self.uncompressedSize = uncompressedSize
            self.crc = crc
            self.localName = localName
            self.localOffsetOf = localOffsetOf
            self.localOffset = localOffset
            self.compressedSize = compressedSize
            self.zip64Extra = zip64Extra
        }
    }

    public var items: [Item]
    /// A ZIP64 end record and locator holding the real count, size and offset; the classic end
    /// record keeps them too (as torch's miniz writer does).
    public var zip64: Bool
    /// Bytes before the archive (a self-extracting stub, a polyglot).
    public var prefix: [UInt8]
    /// The archive comment in the end record.
    public var comment: [UInt8]
    /// Bytes after the end record.
    public var trailing: [UInt8]
    /// Added to the entry count written in the end records.
    public var countDelta: Int
    /// A ZIP64 end record and locator declaring these (count, size, offset), with the classic end
    /// record's fields escaped (0xFFFF, 0xFFFFFFFF); wins over `zip64`.
    public var zip64Sizes: (count: UInt64, size: UInt64, offset: UInt64)?
    /// The end record written twice.
    public var secondEndRecord: Bool

    public init(items: [Item] = [], zip64: Bool = false, prefix: [UInt8] = [], comment: [UInt8] = [], trailing: [UInt8] = [],
                countDelta: Int = 0, zip64Sizes: (count: UInt64, size: UInt64, offset: UInt64)? = nil, secondEndRecord: Bool = false) {
        self.items = items
        self.zip64 = zip64
        self.prefix = prefix
        self.comment = comment
        self.trailing = trailing
        self.countDelta = countDelta
        self.zip64Sizes = zip64Sizes
        self.secondEndRecord = secondEndRecord
    }

    /// Appends a stored entry.
    public mutating func add(_ name: String, _ data: [UInt8]) { items.append(Item(name: name, data: data)) }

    /// A local header and data for `name`, stored, as it appears inside an archive.
    public static func localRecord(_ name: String, _ data: [UInt8]) -> [UInt8] {
        let n = Array(name.utf8)
        return [0x50, 0x4B, 0x03, 0x04] + TestLE.u16(20) + TestLE.u16(0) + TestLE.u16(0) + TestLE.u16(0) + TestLE.u16(0x21)
            + TestLE.u32(Int(PixconvCore.crc32(data))) + TestLE.u32(data.count) + TestLE.u32(data.count)
            + TestLE.u16(n.count) + TestLE.u16(0) + n + data
    }

    /// The archive's bytes.
    public func build() -> [UInt8] {
        var body: [UInt8] = []
        var central: [UInt8] = []
        var offsets: [Int] = []
        for item in items {
            let offset = body.count
            offsets.append(offset)
            let crc = item.crc ?? PixconvCore.crc32(item.data)
            let usize = item.uncompressedSize ?? item.data.count
            let csize = item.compressedSize ?? item.data.count
            let localName = Array((item.localName ?? item.name).utf8)
            body += [0x50, 0x4B, 0x03, 0x04] + TestLE.u16(20) + TestLE.u16(Int(item.flags)) + TestLE.u16(Int(item.method))
            body += TestLE.u16(0) + TestLE.u16(0x21) + TestLE.u32(Int(crc)) + TestLE.u32(csize) + TestLE.u32(usize)
            body += TestLE.u16(localName.count) + TestLE.u16(0) + localName + item.data
            let name = Array(item.name.utf8)
            let local = item.localOffset ?? item.localOffsetOf.map { offsets[$0] } ?? offset
            let extra = item.zip64Extra
                ? TestLE.u16(1) + TestLE.u16(24) + TestLE.u64(UInt64(usize)) + TestLE.u64(UInt64(csize)) + TestLE.u64(UInt64(local)) : []
            let escape = 0xFFFF_FFFF
            central += [0x50, 0x4B, 0x01, 0x02] + TestLE.u16(20) + TestLE.u16(20) + TestLE.u16(Int(item.flags))
            central += TestLE.u16(Int(item.method)) + TestLE.u16(0) + TestLE.u16(0x21) + TestLE.u32(Int(crc))
            central += TestLE.u32(item.zip64Extra ? escape : csize) + TestLE.u32(item.zip64Extra ? escape : usize)
            central += TestLE.u16(name.count) + TestLE.u16(extra.count) + TestLE.u16(0)
            central += TestLE.u16(0) + TestLE.u16(0) + TestLE.u32(0) + TestLE.u32(item.zip64Extra ? escape : local) + name + extra
        }
        var out = prefix + body + central
        var count = items.count + countDelta, size = central.count, offset = body.count
        let recordOffset = body.count + central.count
        if let z = zip64Sizes {
            out += Self.zip64End(count: z.count, size: z.size, offset: z.offset, at: UInt64(recordOffset))
            count = 0xFFFF; size = 0xFFFF_FFFF; offset = 0xFFFF_FFFF
        } else if zip64 {
            out += Self.zip64End(count: UInt64(count), size: UInt64(size), offset: UInt64(offset), at: UInt64(recordOffset))
        }
        let end = [0x50, 0x4B, 0x05, 0x06] + TestLE.u16(0) + TestLE.u16(0) + TestLE.u16(count) + TestLE.u16(count)
            + TestLE.u32(size) + TestLE.u32(offset) + TestLE.u16(comment.count) + comment
        out += end
        if secondEndRecord { out += end }
        return out + trailing
    }

    /// A ZIP64 end of central directory record (56 bytes) at `at`, then its locator (20 bytes).
    static func zip64End(count: UInt64, size: UInt64, offset: UInt64, at: UInt64) -> [UInt8] {
        [0x50, 0x4B, 0x06, 0x06] + TestLE.u64(44) + TestLE.u16(45) + TestLE.u16(45) + TestLE.u32(0) + TestLE.u32(0)
            + TestLE.u64(count) + TestLE.u64(count) + TestLE.u64(size) + TestLE.u64(offset)
            + [0x50, 0x4B, 0x06, 0x07] + TestLE.u32(0) + TestLE.u64(at) + TestLE.u32(1)
    }
}
