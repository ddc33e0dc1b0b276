/// Errors of reading a SentencePiece `.model` file (a serialized `ModelProto`).
public enum SentencePieceError: Error, CustomStringConvertible, Equatable {
    /// A varint, fixed field or length-delimited field runs past the end of its message.
    case truncated(offset: Int, what: String)
    /// A varint longer than 10 bytes.
    case badVarint(offset: Int)
    /// A wire type that proto2 does not define (6, 7), or an unbalanced group.
    case badWireType(offset: Int, field: UInt64, wireType: Int)
    /// Nesting deeper than the reader allows (hostile input).
    case tooDeep(offset: Int)
    /// A string field that is not valid UTF-8.
    case invalidUTF8(what: String)
    case unsupportedModelType(Int)
    case emptyPiece(index: Int)
    case duplicatePiece(String)
    case noUnknownPiece
    case multipleUnknownPieces(index: Int)
    case noPieces
    case badCharsmap(String)

    public var description: String {
        switch self {
        case let .truncated(o, w): return "spiece model: \(w) at byte \(o) runs past the end of its message"
        case let .badVarint(o): return "spiece model: varint at byte \(o) is longer than 10 bytes"
        case let .badWireType(o, f, t): return "spiece model: field \(f) at byte \(o) has bad wire type \(t)"
        case let .tooDeep(o): return "spiece model: groups nested too deeply at byte \(o)"
        case let .invalidUTF8(w): return "spiece model: \(w) is not valid utf-8"
        case let .unsupportedModelType(t): return "spiece model: model type \(t) is not unigram (1)"
        case let .emptyPiece(i): return "spiece model: piece \(i) is empty"
        case let .duplicatePiece(p): return "spiece model: piece \(p.debugDescription) is defined twice"
        case .noUnknownPiece: return "spiece model: no piece has type unknown"
        case let .multipleUnknownPieces(i): return "spiece model: piece \(i) is a second unknown piece"
        case .noPieces: return "spiece model: no pieces"
        case let .badCharsmap(s): return "spiece model: precompiled charsmap: \(s)"
        }
    }
}

/// A minimal proto2 wire-format reader over a byte range (S: protobuf `wire_format_lite`).
///
/// Every read is bounds-checked and throws `SentencePieceError` instead of trapping.
struct SentencePieceProtoReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(Range<Int>)  // byte range inside `bytes`
    }

    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    var atEnd: Bool { offset >= end }

    mutating func readVarint() throws(SentencePieceError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw .truncated(offset: start, what: "varint") }
            guard shift < 70 else { throw .badVarint(offset: start) }
            let b = bytes[offset]
            offset += 1
            if shift < 64 { result |= UInt64(b & 0x7f) << shift }
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// The next field as (number, value); group fields (wire types 3/4) are skipped whole.
    mutating func next() throws(SentencePieceError) -> (field: UInt64, value: Value)? {
        while !atEnd {
            let keyOffset = offset
            let key = try readVarint()
            let field = key >> 3
            let wireType = Int(key & 7)
            switch wireType {
            case 0:
                return (field, .varint(try readVarint()))
            case 1:
                guard end - offset >= 8 else { throw .truncated(offset: keyOffset, what: "fixed64 field \(field)") }
                var v: UInt64 = 0
                for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
                offset += 8
                return (field, .fixed64(v))
            case 2:
                let length = try readVarint()
                guard length <= UInt64(end - offset) else {
                    throw .truncated(offset: keyOffset, what: "length-delimited field \(field)")
                }
                let start = offset
                offset += Int(length)
                return (field, .bytes(start..<offset))
            case 3:
                try skipGroup(field: field, keyOffset: keyOffset)
                continue
            case 5:
                guard end - offset >= 4 else { throw .truncated(offset: keyOffset, what: "fixed32 field \(field)") }
                var v: UInt32 = 0
                for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
                offset += 4
                return (field, .fixed32(v))
            default:  // 4 (end group without a start) or 6, 7 (undefined)
                throw .badWireType(offset: keyOffset, field: field, wireType: wireType)
            }
        }
        return nil
    }

    /// Skips a deprecated group up to its matching end-group key.
    private mutating func skipGroup(field: UInt64, keyOffset: Int) throws(SentencePieceError) {
        var stack: [UInt64] = [field]
        while let open = stack.last {
            guard stack.count <= 64 else { throw .tooDeep(offset: offset) }
            guard !atEnd else { throw .truncated(offset: keyOffset, what: "group \(field)") }
            let here = offset
            let key = try readVarint()
            let f = key >> 3
            switch Int(key & 7) {
            case 0: _ = try readVarint()
            case 1:
                guard end - offset >= 8 else { throw .truncated(offset: here, what: "fixed64 in group") }
                offset += 8
            case 2:
                let length = try readVarint()
                guard length <= UInt64(end - offset) else { throw .truncated(offset: here, what: "bytes in group") }
                offset += Int(length)
            case 3: stack.append(f)
            case 4:
                guard f == open else { throw .badWireType(offset: here, field: f, wireType: 4) }
                stack.removeLast()
            case 5:
                guard end - offset >= 4 else { throw .truncated(offset: here, what: "fixed32 in group") }
                offset += 4
            default: throw .badWireType(offset: here, field: f, wireType: Int(key & 7))
            }
        }
    }

    func string(_ range: Range<Int>, what: String) throws(SentencePieceError) -> String {
        guard let s = String(validating: bytes[range], as: UTF8.self) else { throw .invalidUTF8(what: what) }
        return s
    }
}

extension SentencePieceProtoReader.Value {
    /// proto2 int32 / enum: the low 32 bits of the varint (negative values are sign-extended to 64 bits).
    var int32: Int32? {
        if case let .varint(v) = self { return Int32(truncatingIfNeeded: v) }
        return nil
    }

    var bool: Bool? {
        if case let .varint(v) = self { return v != 0 }
        return nil
    }

    var float: Float? {
        if case let .fixed32(v) = self { return Float(bitPattern: v) }
        return nil
    }

    var range: Range<Int>? {
        if case let .bytes(r) = self { return r }
        return nil
    }
}
