import PixconvCore

/// A JSON syntax error at a byte offset of the parsed input (plus any base offset the caller gave).
public struct JSONError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case unexpectedEnd
        case unexpectedByte(UInt8, expected: String)
        case invalidUTF8
        case controlCharacterInString
        case badEscape
        case badSurrogate
        case badNumber
        case numberTooLong
        case duplicateKey(String)
        case tooDeep(limit: Int)
        case tooLarge(limit: Int)
        case tooManyValues(limit: Int)
        case trailingData
    }

    public let kind: Kind
    public let offset: Int

    public init(kind: Kind, offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String { "invalid json at byte \(offset): \(reason)" }

    public var reason: String {
        switch kind {
        case .unexpectedEnd: return "unexpected end of input"
        case let .unexpectedByte(b, expected):
            let shown = (0x21...0x7E).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
            return "expected \(expected), found \(shown)"
        case .invalidUTF8: return "invalid utf-8"
        case .controlCharacterInString: return "unescaped control character in string"
        case .badEscape: return "invalid escape sequence"
        case .badSurrogate: return "unpaired utf-16 surrogate in \\u escape"
        case .badNumber: return "malformed number"
        case .numberTooLong: return "number literal too long"
        case let .duplicateKey(k): return "duplicate key \"\(k)\""
        case let .tooDeep(limit): return "nesting deeper than \(limit)"
        case let .tooLarge(limit): return "document larger than \(limit) bytes"
        case let .tooManyValues(limit): return "more than \(limit) values"
        case .trailingData: return "unexpected data after the top-level value"
        }
    }
}

/// Errors of the safetensors, sharded-index and diffusers-folder readers.
///
/// Each case names the file and, where it applies, the tensor and the byte offset; `description`
/// is one lowercase line. Cases mirror safetensors' `SafeTensorError` (`tensor.rs`) where one
/// exists (named in the comments), plus pixconv's stricter rules.
public enum ReaderError: Error, CustomStringConvertible, Equatable, Sendable {
    case file(FileError)
    /// `HeaderTooSmall`: fewer than 8 bytes.
    case headerTooSmall(path: String, fileSize: Int)
    /// `HeaderTooLarge`: the length prefix exceeds the cap.
    case headerTooLarge(path: String, length: UInt64, limit: Int)
    /// `InvalidHeaderLength`: 8 + length runs past the end of the file.
    case headerPastEnd(path: String, length: Int, fileSize: Int)
    /// `InvalidHeader`: the header is not UTF-8.
    case headerNotUTF8(path: String, offset: Int)
    /// `InvalidHeaderDeserialization`: the header is not valid JSON.
    case headerNotJSON(path: String, error: JSONError)
    /// The header (after optional whitespace) does not start with `{`, or is not an object.
    case headerNotObject(path: String, offset: Int)
    case duplicateKey(path: String, key: String, offset: Int)
    case entryNotObject(path: String, tensor: String, offset: Int)
    case missingField(path: String, tensor: String, field: String, offset: Int)
    case unknownField(path: String, tensor: String, field: String, offset: Int)
    /// A `dtype` that is not one of the supported safetensors spellings.
    case unknownDType(path: String, tensor: String, dtype: String, offset: Int)
    /// A shape or offset that is not a non-negative integer ≤ 2^53, or a wrongly sized array.
    case badNumber(path: String, tensor: String, field: String, offset: Int)
    case metadataNotObject(path: String, offset: Int)
    case metadataNotString(path: String, key: String, offset: Int)
    /// `ValidationOverflow`: shape × element size overflows.
    case shapeOverflow(path: String, tensor: String, shape: [Int])
    /// `InvalidOffset` (end < begin).
    case offsetsReversed(path: String, tensor: String, begin: Int, end: Int)
    /// `InvalidOffset` (hole or overlap after sorting by offsets).
    case offsetsNotContiguous(path: String, tensor: String, expectedBegin: Int, begin: Int)
    /// `TensorInvalidInfo`: end − begin ≠ elements × element size.
    case sizeMismatch(path: String, tensor: String, expected: Int, actual: Int)
    /// `MetadataIncompleteBuffer`, bytes after the last tensor.
    case trailingBytes(path: String, dataEnd: Int, fileSize: Int)
    /// `MetadataIncompleteBuffer`, file shorter than the header says.
    case truncated(path: String, dataEnd: Int, fileSize: Int)
    case tooManyTensors(path: String, limit: Int)
    case tensorNotFound(path: String, tensor: String)
    /// The sharded index or a folder's JSON file is not what its format requires.
    case badIndex(path: String, reason: String)
    case badShardName(path: String, shard: String)
    case tensorMissingFromShard(path: String, tensor: String, shard: String)
    case tensorInTwoShards(path: String, tensor: String, shards: [String])
    case tensorNotInIndex(path: String, tensor: String, shard: String)
    case badConfig(path: String, error: JSONError)
    case notAModelFolder(path: String, reason: String)
    case badComponent(path: String, component: String, reason: String)
    case unsupportedWeights(path: String)
    case fileTooLarge(path: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case let .file(e): return e.description
        case let .headerTooSmall(p, n): return "\(p): header too small: file has \(n) bytes, needs at least 8"
        case let .headerTooLarge(p, n, limit): return "\(p): header too large: length prefix \(n) exceeds \(limit) bytes"
        case let .headerPastEnd(p, n, size): return "\(p): header length \(n) exceeds the file (\(size) bytes)"
        case let .headerNotUTF8(p, o): return "\(p): header is not utf-8 (byte \(o))"
        case let .headerNotJSON(p, e): return "\(p): header is not valid json: \(e)"
        case let .headerNotObject(p, o): return "\(p): header is not a json object (byte \(o))"
        case let .duplicateKey(p, k, o): return "\(p): duplicate key \"\(k)\" at byte \(o)"
        case let .entryNotObject(p, t, o): return "\(p): tensor \(t): entry is not an object (byte \(o))"
        case let .missingField(p, t, f, o): return "\(p): tensor \(t): missing field \"\(f)\" (byte \(o))"
        case let .unknownField(p, t, f, o): return "\(p): tensor \(t): unknown field \"\(f)\" (byte \(o))"
        case let .unknownDType(p, t, d, o): return "\(p): tensor \(t): unknown dtype \"\(d)\" (byte \(o))"
        case let .badNumber(p, t, f, o):
            return "\(p): tensor \(t): \(f) must be an array of integers in 0...2^53 (byte \(o))"
        case let .metadataNotObject(p, o): return "\(p): __metadata__ is not an object (byte \(o))"
        case let .metadataNotString(p, k, o): return "\(p): __metadata__ value for \"\(k)\" is not a string (byte \(o))"
        case let .shapeOverflow(p, t, s): return "\(p): tensor \(t): size of shape \(s) overflows"
        case let .offsetsReversed(p, t, b, e): return "\(p): tensor \(t): data_offsets end \(e) is before begin \(b)"
        case let .offsetsNotContiguous(p, t, x, b):
            return "\(p): tensor \(t): data_offsets not contiguous: begins at \(b), expected \(x) (hole or overlap)"
        case let .sizeMismatch(p, t, x, a):
            return "\(p): tensor \(t): byte length \(a) does not match shape × dtype (\(x) bytes)"
        case let .trailingBytes(p, end, size): return "\(p): \(size - end) trailing bytes after tensor data (data ends at \(end))"
        case let .truncated(p, end, size): return "\(p): file truncated: tensor data ends at \(end), file has \(size) bytes"
        case let .tooManyTensors(p, limit): return "\(p): more than \(limit) tensors"
        case let .tensorNotFound(p, t): return "\(p): no tensor named \(t)"
        case let .badIndex(p, r): return "\(p): \(r)"
        case let .badShardName(p, s): return "\(p): shard name \"\(s)\" is not a plain .safetensors file name in the index's folder"
        case let .tensorMissingFromShard(p, t, s): return "\(p): tensor \(t) is mapped to \(s) but that shard does not hold it"
        case let .tensorInTwoShards(p, t, s): return "\(p): tensor \(t) is stored in several shards: \(s.joined(separator: ", "))"
        case let .tensorNotInIndex(p, t, s): return "\(p): tensor \(t) in shard \(s) is not in the weight_map"
        case let .badConfig(p, e): return "\(p): \(e)"
        case let .notAModelFolder(p, r): return "\(p): not a model folder: \(r)"
        case let .badComponent(p, c, r): return "\(p): component \(c): \(r)"
        case let .unsupportedWeights(p): return "\(p): no reader for this weights file"
        case let .fileTooLarge(p, n, limit): return "\(p): file too large (\(n) bytes, limit \(limit))"
        }
    }
}
