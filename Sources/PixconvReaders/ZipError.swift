/// Errors of reading a zip archive (`ZipArchive`). Offsets are absolute byte offsets in the file.
public enum ZipError: Error, CustomStringConvertible, Equatable, Sendable {
    case noEndRecord
    case trailingBytes(count: Int)
    case twoEndRecords(offset: Int)
    case commentNotAllowed(length: Int)
    case multiDisk
    case badZip64(String)
    case countMismatch(String)
    case centralDirectoryOutOfBounds(offset: Int, size: Int)
    case badCentralEntry(index: Int, offset: Int, reason: String)
    case badName(String)
    case duplicateName(String)
    case unsupportedFlags(name: String, flags: UInt16)
    case unsupportedMethod(name: String, method: UInt16)
    case badLocalHeader(name: String, offset: Int, reason: String)
    case entryPastEnd(name: String)
    case overlappingEntries(String, String)
    case sizeOverflow(name: String)
    case tooLarge(name: String, declared: Int, limit: Int)
    case inflate(name: String, reason: String)
    case crcMismatch(name: String, expected: UInt32, actual: UInt32)

    public var description: String {
        switch self {
        case .noEndRecord: return "not a zip archive: no end-of-central-directory record"
        case let .trailingBytes(n): return "zip: \(n) trailing bytes after the end record"
        case let .twoEndRecords(o): return "zip: a second end record at \(o) (archives concatenated)"
        case let .commentNotAllowed(n): return "zip: archive comment of \(n) bytes not allowed"
        case .multiDisk: return "zip: multi-disk archives are not supported"
        case let .badZip64(why): return "zip: bad zip64 end record: \(why)"
        case let .countMismatch(why): return "zip: entry counts disagree: \(why)"
        case let .centralDirectoryOutOfBounds(o, s):
            return "zip: central directory at \(o) of \(s) bytes lies outside the file"
        case let .badCentralEntry(i, o, why): return "zip: central entry \(i) at offset \(o): \(why)"
        case let .badName(n): return "zip: entry name not allowed: \(n.debugDescription)"
        case let .duplicateName(n): return "zip: duplicate entry \(n)"
        case let .unsupportedFlags(n, f): return "zip: entry \(n): unsupported flags 0x\(String(f, radix: 16))"
        case let .unsupportedMethod(n, m): return "zip: entry \(n): unsupported compression method \(m)"
        case let .badLocalHeader(n, o, why): return "zip: entry \(n): local header at \(o): \(why)"
        case let .entryPastEnd(n): return "zip: entry \(n) extends past the end of its area"
        case let .overlappingEntries(a, b): return "zip: entries \(a) and \(b) overlap"
        case let .sizeOverflow(n): return "zip: entry \(n): size overflow"
        case let .tooLarge(n, d, l): return "zip: entry \(n): declared size \(d) exceeds the limit \(l)"
        case let .inflate(n, why): return "zip: entry \(n): cannot inflate: \(why)"
        case let .crcMismatch(n, e, a):
            return "zip: entry \(n): CRC mismatch (expected \(String(e, radix: 16)), found \(String(a, radix: 16)))"
        }
    }
}
