import PixconvCore

/// One file inside a zip archive, as its central directory and local header describe it.
/// Offsets are absolute in the mapped file (any archive prefix already added).
public struct ZipEntry: Sendable, Hashable {
    public let name: String
    public let flags: UInt16
    /// 0 = stored, 8 = deflated.
    public let method: UInt16
    public let crc32: UInt32
    public let compressedSize: Int
    /// Declared by the archive, so untrusted until the record has been read.
    public let uncompressedSize: Int
    public let headerOffset: Int
    public let dataOffset: Int

    public var isStored: Bool { method == 0 }
    public var isDirectory: Bool { name.hasSuffix("/") }
    /// End of the compressed data (exclusive).
    public var dataEnd: Int { dataOffset + compressedSize }
}

/// The bytes of one record, kept alive by `owner` (the file mapping or a heap buffer).
public struct ZipRecord: @unchecked Sendable {  // immutable bytes; `owner` keeps them alive
    public let owner: AnyObject
    public let bytes: UnsafeRawBufferPointer

    /// Runs `body` on the bytes while `owner` is guaranteed alive.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(bytes) }
    }
}

/// A strict reader of zip archives held in a `MappedFile`.
///
/// Follows APPNOTE.TXT 6.3 (end record, ZIP64 end record and locator, central directory, local
/// headers) and Python's `zipfile._EndRecData`/`_RealGetContents` for archives with a prefix
/// (offsets are shifted by the prefix length). Stricter than both (`formats/torch.md`, "Zip rules"):
/// no comment or trailing bytes, no second end record in a prefix, names checked, no duplicates, no overlapping entries, flags ⊆
/// {0x8, 0x800}, methods stored/deflated, local and central names equal, counts consistent.
public final class ZipArchive: @unchecked Sendable {  // immutable after init
    public let file: MappedFile
    /// Entries in central-directory order.
    public let entries: [ZipEntry]
    /// Bytes before the archive proper (0 for a plain zip).
    public let prefixLength: Int
    private let index: [String: Int]

    static let endSignature: UInt32 = 0x0605_4B50
    static let zip64EndSignature: UInt32 = 0x0606_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let localSignature: UInt32 = 0x0403_4B50
    /// Most bytes deflate can expand to per compressed byte (zlib's theoretical limit is 1032:1).
    static let maxInflateRatio = 1032

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(ZipError) {
        self.file = file
        let directory = try ZipArchive.locateCentralDirectory(file.bytes)
        prefixLength = directory.prefix
        var parsed = try ZipArchive.parseCentralDirectory(file.bytes, directory)
        var index: [String: Int] = [:]
        index.reserveCapacity(parsed.count)
        for (i, entry) in parsed.enumerated() {
            if index.updateValue(i, forKey: entry.name) != nil { throw .duplicateName(entry.name) }
        }
        // Local headers, then overlap: every entry must own a disjoint span before the directory.
        for i in parsed.indices {
            parsed[i] = try ZipArchive.checkLocalHeader(file.bytes, parsed[i], limit: directory.start)
        }
        let byOffset = parsed.sorted { $0.headerOffset < $1.headerOffset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.dataEnd > b.headerOffset {
            throw .overlappingEntries(a.name, b.name)
        }
        self.entries = parsed
        self.index = index
    }

    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// The uncompressed bytes of `entry`: a slice of the mapping for a stored record, an inflated
    /// heap copy for a deflated one. The declared size is checked against `limit` and against what
    /// the compressed bytes can produce before anything is allocated; inflated output must match
    /// the declared size and CRC exactly. Stored records are CRC-checked when `verifyCRC` is set.
    public func read(_ entry: ZipEntry, limit: Int = Int.max, verifyCRC: Bool = true) throws(ZipError) -> ZipRecord {
        guard entry.uncompressedSize <= limit else {
            throw .tooLarge(name: entry.name, declared: entry.uncompressedSize, limit: limit)
        }
        let compressed = file.slice(entry.dataOffset..<entry.dataEnd)
        if entry.isStored {
            if verifyCRC { try checkMappedCRC(entry, compressed) }
            return ZipRecord(owner: file, bytes: compressed)
        }
        let (bound, overflow) = entry.compressedSize.multipliedReportingOverflow(by: ZipArchive.maxInflateRatio)
        if !overflow, entry.uncompressedSize > bound + 64 {
            throw .tooLarge(name: entry.name, declared: entry.uncompressedSize, limit: bound + 64)
        }
        let buffer = HeapBuffer(count: entry.uncompressedSize)
        try ZipInflater.inflate(compressed, into: buffer.bytes, name: entry.name)
        let bytes = UnsafeRawBufferPointer(buffer.bytes)
        try ZipArchive.checkCRC(entry, actual: PixconvCore.crc32(bytes))
        return ZipRecord(owner: buffer, bytes: bytes)
    }

    /// The CRC-32 check of a slice of the mapping, 4 MiB at a time, dropping each piece's pages
    /// from this process once summed (they stay in the page cache), so that checking a record of a
    /// streaming conversion does not make the process hold the whole record.
    private func checkMappedCRC(_ entry: ZipEntry, _ bytes: UnsafeRawBufferPointer) throws(ZipError) {
        var crc: UInt32 = 0
        var offset = 0
        while offset < bytes.count {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + (4 << 20))])
            crc = PixconvCore.crc32(piece, continuing: crc)
            file.dropPages(of: piece, margin: MappedFile.faultAroundMargin)
            offset += piece.count
        }
        try ZipArchive.checkCRC(entry, actual: crc)
    }

    static func checkCRC(_ entry: ZipEntry, actual: UInt32) throws(ZipError) {
        guard actual == entry.crc32 else { throw .crcMismatch(name: entry.name, expected: entry.crc32, actual: actual) }
    }

    // MARK: - End records

    struct Directory {
        var start: Int  // absolute offset of the first central entry
        var size: Int
        var count: Int
        var prefix: Int
    }

    static func locateCentralDirectory(_ b: UnsafeRawBufferPointer) throws(ZipError) -> Directory {
        let n = b.count
        guard n >= 22 else { throw .noEndRecord }
        let lowest = max(0, n - (65535 + 22))
        var pos = n - 22
        while pos >= lowest, b.readLE(pos, as: UInt32.self) != endSignature { pos -= 1 }
        guard pos >= lowest else { throw .noEndRecord }
        let commentLength = Int(b.readLE(pos + 20, as: UInt16.self))
        guard commentLength == 0 else { throw .commentNotAllowed(length: commentLength) }
        guard pos + 22 == n else { throw .trailingBytes(count: n - pos - 22) }
        let disk = b.readLE(pos + 4, as: UInt16.self), cdDisk = b.readLE(pos + 6, as: UInt16.self)
        let onDisk16 = b.readLE(pos + 8, as: UInt16.self), total16 = b.readLE(pos + 10, as: UInt16.self)
        let size32 = b.readLE(pos + 12, as: UInt32.self), offset32 = b.readLE(pos + 16, as: UInt32.self)
        guard disk == 0 || disk == 0xFFFF, cdDisk == 0 || cdDisk == 0xFFFF else { throw .multiDisk }
        guard onDisk16 == total16 else { throw .countMismatch("\(onDisk16) entries on this disk, \(total16) in total") }

        var count = Int(total16), size = Int(size32), offset = Int(offset32)
        var endOfDirectory = pos
        if pos >= 20, b.readLE(pos - 20, as: UInt32.self) == zip64LocatorSignature {
            let loc = pos - 20
            let recordDisk = b.readLE(loc + 4, as: UInt32.self)
            let recordOffset = b.readLE(loc + 8, as: UInt64.self)
            let disks = b.readLE(loc + 16, as: UInt32.self)
            guard recordDisk == 0, disks <= 1 else { throw .multiDisk }
            // Like zipfile, the record is expected right before its locator (it has no extension).
            guard loc >= 56 else { throw .badZip64("record missing before its locator") }
            let rec = loc - 56
            guard b.readLE(rec, as: UInt32.self) == zip64EndSignature else {
                throw .badZip64("record missing before its locator")
            }
            guard b.readLE(rec + 4, as: UInt64.self) == 44 else { throw .badZip64("record has extensible data") }
            guard b.readLE(rec + 16, as: UInt32.self) == 0, b.readLE(rec + 20, as: UInt32.self) == 0 else {
                throw .multiDisk
            }
            let onDisk64 = b.readLE(rec + 24, as: UInt64.self), total64 = b.readLE(rec + 32, as: UInt64.self)
            let size64 = b.readLE(rec + 40, as: UInt64.self), offset64 = b.readLE(rec + 48, as: UInt64.self)
            guard onDisk64 == total64 else { throw .countMismatch("\(onDisk64) entries on this disk, \(total64) in total") }
            guard total16 == 0xFFFF || UInt64(total16) == total64,
                  size32 == 0xFFFF_FFFF || UInt64(size32) == size64,
                  offset32 == 0xFFFF_FFFF || UInt64(offset32) == offset64
            else { throw .badZip64("end record and zip64 record disagree") }
            guard let c = Int(exactly: total64), let s = Int(exactly: size64), let o = Int(exactly: offset64) else {
                throw .badZip64("value out of range")
            }
            count = c; size = s; offset = o
            endOfDirectory = rec
            // The locator's offset is relative to the archive proper, like every other offset.
            let (prefixedSum, o1) = offset.addingReportingOverflow(size)
            guard !o1, prefixedSum <= rec else { throw .centralDirectoryOutOfBounds(offset: offset, size: size) }
            guard Int(exactly: recordOffset) == prefixedSum
            else { throw .badZip64("locator offset \(recordOffset) disagrees with the record at \(prefixedSum)") }
        }
        let (cdEnd, o2) = offset.addingReportingOverflow(size)
        guard !o2, cdEnd <= endOfDirectory else { throw .centralDirectoryOutOfBounds(offset: offset, size: size) }
        let prefix = endOfDirectory - cdEnd
        // Python's zipfile reads an archive behind a prefix; a prefix that holds another end record
        // is a second archive, which other readers would pick instead (a parser differential).
        if prefix >= 4 {
            for i in 0...(prefix - 4) where b.readLE(i, as: UInt32.self) == endSignature { throw .twoEndRecords(offset: i) }
        }
        // Every central entry takes at least 46 bytes.
        guard count <= size / 46 else { throw .countMismatch("\(count) entries cannot fit in \(size) bytes") }
        return Directory(start: offset + prefix, size: size, count: count, prefix: prefix)
    }

    // MARK: - Central directory

    static func parseCentralDirectory(_ b: UnsafeRawBufferPointer, _ d: Directory) throws(ZipError) -> [ZipEntry] {
        var entries: [ZipEntry] = []
        entries.reserveCapacity(d.count)
        let end = d.start + d.size
        var p = d.start
        for i in 0..<d.count {
            guard end - p >= 46, b.readLE(p, as: UInt32.self) == centralSignature else {
                throw .badCentralEntry(index: i, offset: p, reason: "missing central header")
            }
            let flags = b.readLE(p + 8, as: UInt16.self), method = b.readLE(p + 10, as: UInt16.self)
            let crc = b.readLE(p + 16, as: UInt32.self)
            var csize = UInt64(b.readLE(p + 20, as: UInt32.self)), usize = UInt64(b.readLE(p + 24, as: UInt32.self))
            let nameLength = Int(b.readLE(p + 28, as: UInt16.self)), extraLength = Int(b.readLE(p + 30, as: UInt16.self))
            let commentLength = Int(b.readLE(p + 32, as: UInt16.self))
            var disk = UInt32(b.readLE(p + 34, as: UInt16.self))
            var local = UInt64(b.readLE(p + 42, as: UInt32.self))
            let variable = nameLength + extraLength + commentLength
            guard end - p - 46 >= variable else { throw .badCentralEntry(index: i, offset: p, reason: "entry runs past the directory") }
            let nameBytes = UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLength)])
            let name = try ZipArchive.decodeName(nameBytes, flags: flags)

            // Extra fields: (id, size, data)*, exactly filling their area; ZIP64 at most once.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            var sawZip64 = false
            while e < extraEnd {
                guard extraEnd - e >= 4 else { throw .badCentralEntry(index: i, offset: p, reason: "malformed extra field") }
                let id = b.readLE(e, as: UInt16.self), length = Int(b.readLE(e + 2, as: UInt16.self))
                guard extraEnd - e - 4 >= length else { throw .badCentralEntry(index: i, offset: p, reason: "malformed extra field") }
                if id == 1 {
                    guard !sawZip64 else { throw .badCentralEntry(index: i, offset: p, reason: "two zip64 extra fields") }
                    sawZip64 = true
                    var q = e + 4
                    let qEnd = q + length
                    func next64() throws(ZipError) -> UInt64 {
                        guard qEnd - q >= 8 else { throw .badCentralEntry(index: i, offset: p, reason: "short zip64 extra field") }
                        defer { q += 8 }
                        return b.readLE(q, as: UInt64.self)
                    }
                    if usize == 0xFFFF_FFFF { usize = try next64() }
                    if csize == 0xFFFF_FFFF { csize = try next64() }
                    if local == 0xFFFF_FFFF { local = try next64() }
                    if disk == 0xFFFF {
                        guard qEnd - q >= 4 else { throw .badCentralEntry(index: i, offset: p, reason: "short zip64 extra field") }
                        disk = b.readLE(q, as: UInt32.self)
                    }
                }
                e += 4 + length
            }
            guard disk == 0 else { throw .multiDisk }
            guard flags & ~UInt16(0x0808) == 0 else { throw .unsupportedFlags(name: name, flags: flags) }
            guard method == 0 || method == 8 else { throw .unsupportedMethod(name: name, method: method) }
            guard let c = Int(exactly: csize), let u = Int(exactly: usize), let l = Int(exactly: local) else {
                throw .sizeOverflow(name: name)
            }
            if method == 0, c != u { throw .badCentralEntry(index: i, offset: p, reason: "stored entry with different sizes") }
            if name.hasSuffix("/"), u != 0 { throw .badName(name) }
            let (header, o) = l.addingReportingOverflow(d.prefix)
            guard !o else { throw .sizeOverflow(name: name) }
            entries.append(ZipEntry(name: name, flags: flags, method: method, crc32: crc, compressedSize: c,
                                    uncompressedSize: u, headerOffset: header, dataOffset: header))
            p += 46 + variable
        }
        guard p == end else { throw .countMismatch("\(end - p) bytes left in the central directory after \(d.count) entries") }
        return entries
    }

    /// Entry names must be relative, clean paths: no `..` or `.` component, no empty component
    /// (except a directory's trailing slash), no backslash, NUL or colon; UTF-8 when flagged,
    /// plain ASCII otherwise (the spec's CP437 fallback would make names ambiguous).
    static func decodeName(_ bytes: UnsafeRawBufferPointer, flags: UInt16) throws(ZipError) -> String {
        let name = String(decoding: bytes, as: UTF8.self)
        guard name.utf8.elementsEqual(bytes) else { throw .badName(name) }  // invalid UTF-8 was replaced
        if flags & 0x800 == 0, bytes.contains(where: { $0 >= 0x80 }) { throw .badName(name) }
        guard !name.isEmpty, !bytes.contains(0), !bytes.contains(UInt8(ascii: "\\")),
              !bytes.contains(UInt8(ascii: ":")), bytes.first != UInt8(ascii: "/")
        else { throw .badName(name) }
        var parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.hasSuffix("/") { parts.removeLast() }
        for part in parts where part.isEmpty || part == "." || part == ".." { throw .badName(name) }
        return name
    }

    /// Checks the local header of `entry` against its central record and returns the entry with
    /// its data offset filled in. Everything must end before `limit` (the central directory).
    static func checkLocalHeader(_ b: UnsafeRawBufferPointer, _ entry: ZipEntry, limit: Int) throws(ZipError) -> ZipEntry {
        let h = entry.headerOffset
        guard h <= limit, limit - h >= 30 else { throw .entryPastEnd(name: entry.name) }
        guard b.readLE(h, as: UInt32.self) == localSignature else {
            throw .badLocalHeader(name: entry.name, offset: h, reason: "missing signature")
        }
        let flags = b.readLE(h + 6, as: UInt16.self), method = b.readLE(h + 8, as: UInt16.self)
        guard flags == entry.flags, method == entry.method else {
            throw .badLocalHeader(name: entry.name, offset: h, reason: "flags or method differ from the central directory")
        }
        if flags & 0x8 == 0 {
            let crc = b.readLE(h + 14, as: UInt32.self)
            let csize = b.readLE(h + 18, as: UInt32.self), usize = b.readLE(h + 22, as: UInt32.self)
            let sizesAgree = (csize == 0xFFFF_FFFF || Int(csize) == entry.compressedSize)
                && (usize == 0xFFFF_FFFF || Int(usize) == entry.uncompressedSize)
            guard crc == entry.crc32, sizesAgree else {
                throw .badLocalHeader(name: entry.name, offset: h, reason: "CRC or sizes differ from the central directory")
            }
        }
        let nameLength = Int(b.readLE(h + 26, as: UInt16.self)), extraLength = Int(b.readLE(h + 28, as: UInt16.self))
        guard limit - h - 30 >= nameLength + extraLength else { throw .entryPastEnd(name: entry.name) }
        let localName = UnsafeRawBufferPointer(rebasing: b[(h + 30)..<(h + 30 + nameLength)])
        guard localName.elementsEqual(entry.name.utf8) else {
            throw .badLocalHeader(name: entry.name, offset: h,
                                  reason: "local name \(String(decoding: localName, as: UTF8.self).debugDescription) differs")
        }
        let data = h + 30 + nameLength + extraLength
        guard limit - data >= entry.compressedSize else { throw .entryPastEnd(name: entry.name) }
        return ZipEntry(name: entry.name, flags: entry.flags, method: entry.method, crc32: entry.crc32,
                        compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize,
                        headerOffset: h, dataOffset: data)
    }
}
