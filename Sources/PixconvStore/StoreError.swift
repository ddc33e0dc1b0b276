import PixconvCore

/// Errors of reading and writing GGUF files and pixconv stores. Each case names the file, and where
/// it applies the key or tensor and the byte offset in the file where the bad field starts.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case file(FileError)
    case truncated(file: String, offset: Int, need: Int, what: String)
    case badMagic(file: String, found: UInt32)
    case unsupportedVersion(file: String, version: UInt32)
    case bigEndian(file: String)
    case countTooLarge(file: String, what: String, count: UInt64, offset: Int)
    case badString(file: String, offset: Int, reason: String)
    case badKey(file: String, key: String, offset: Int, reason: String)
    case duplicateKey(file: String, key: String, offset: Int)
    case badValueType(file: String, key: String, type: UInt32, offset: Int)
    case badBool(file: String, key: String, value: UInt8, offset: Int)
    case arrayTooDeep(file: String, key: String, offset: Int)
    case badAlignment(file: String, detail: String)
    case badTensorName(file: String, tensor: String, offset: Int, reason: String)
    case duplicateTensor(file: String, tensor: String, offset: Int)
    case badDimensions(file: String, tensor: String, offset: Int, reason: String)
    case badTensorType(file: String, tensor: String, type: UInt32, offset: Int)
    case unsupportedTensorType(file: String, tensor: String, type: UInt32, offset: Int)
    case badRowLength(file: String, tensor: String, rowLength: Int, blockSize: Int)
    case sizeOverflow(file: String, tensor: String)
    case badOffset(file: String, tensor: String, offset: UInt64, expected: UInt64)
    case dataOutOfBounds(file: String, tensor: String, end: UInt64, fileSize: Int)
    case nonZeroPadding(file: String, offset: Int)
    case trailingBytes(file: String, offset: Int, count: Int)
    case missingTensor(file: String, tensor: String)
    case missingKey(file: String, key: String)
    case wrongKeyType(file: String, key: String, expected: String, actual: String)
    case badMetadata(file: String, key: String, reason: String)
    case checksumMismatch(file: String, region: String, expected: UInt32, actual: UInt32)
    // Writing.
    case badWriterInput(file: String, reason: String)
    case tensorSizeMismatch(file: String, tensor: String, expected: Int, actual: Int)
    case writerState(file: String, reason: String)
    case producerChanged(file: String, tensor: String)

    public var description: String {
        switch self {
        case let .file(e): return e.description
        case let .truncated(f, o, n, w): return "\(f): truncated at byte \(o): \(w) needs \(n) more byte(s)"
        case let .badMagic(f, m): return "\(f): not a GGUF file (magic 0x\(String(m, radix: 16)))"
        case let .unsupportedVersion(f, v):
            return v <= 1 ? "\(f): GGUF version \(v) is not supported (only 2 and 3)" : "\(f): GGUF version \(v) is newer than 3"
        case let .bigEndian(f): return "\(f): big-endian GGUF files are not supported"
        case let .countTooLarge(f, w, c, o): return "\(f): \(w) count \(c) at byte \(o) does not fit in the file"
        case let .badString(f, o, r): return "\(f): bad string at byte \(o): \(r)"
        case let .badKey(f, k, o, r): return "\(f): bad key '\(k)' at byte \(o): \(r)"
        case let .duplicateKey(f, k, o): return "\(f): duplicate key '\(k)' at byte \(o)"
        case let .badValueType(f, k, t, o): return "\(f): key '\(k)' has unknown value type \(t) at byte \(o)"
        case let .badBool(f, k, v, o): return "\(f): key '\(k)' has bool value \(v) at byte \(o) (only 0 and 1)"
        case let .arrayTooDeep(f, k, o): return "\(f): key '\(k)' nests arrays too deeply at byte \(o)"
        case let .badAlignment(f, d): return "\(f): bad general.alignment: \(d)"
        case let .badTensorName(f, t, o, r): return "\(f): bad tensor name '\(t)' at byte \(o): \(r)"
        case let .duplicateTensor(f, t, o): return "\(f): duplicate tensor '\(t)' at byte \(o)"
        case let .badDimensions(f, t, o, r): return "\(f): tensor '\(t)' at byte \(o): \(r)"
        case let .badTensorType(f, t, ty, o): return "\(f): tensor '\(t)' has invalid ggml type \(ty) at byte \(o)"
        case let .unsupportedTensorType(f, t, ty, o): return "\(f): tensor '\(t)' has ggml type \(ty) (at byte \(o)), which pixconv does not read"
        case let .badRowLength(f, t, n, b): return "\(f): tensor '\(t)': row length \(n) is not a multiple of the block size \(b)"
        case let .sizeOverflow(f, t): return "\(f): tensor '\(t)': tensor size overflow"
        case let .badOffset(f, t, o, e): return "\(f): tensor '\(t)' has offset \(o), expected \(e)"
        case let .dataOutOfBounds(f, t, e, s): return "\(f): tensor '\(t)' ends at byte \(e), past the end of the file (\(s) bytes)"
        case let .nonZeroPadding(f, o): return "\(f): padding byte at \(o) is not zero"
        case let .trailingBytes(f, o, c): return "\(f): \(c) unexpected byte(s) after the tensor data at byte \(o)"
        case let .missingTensor(f, t): return "\(f): no tensor '\(t)'"
        case let .missingKey(f, k): return "\(f): missing key '\(k)'"
        case let .wrongKeyType(f, k, e, a): return "\(f): key '\(k)' is \(a), expected \(e)"
        case let .badMetadata(f, k, r): return "\(f): key '\(k)': \(r)"
        case let .checksumMismatch(f, r, e, a):
            return "\(f): \(r) is damaged: crc32 \(String(a, radix: 16)), expected \(String(e, radix: 16))"
        case let .badWriterInput(f, r): return "\(f): cannot write: \(r)"
        case let .tensorSizeMismatch(f, t, e, a): return "\(f): tensor '\(t)': expected \(e) bytes, got \(a)"
        case let .writerState(f, r): return "\(f): \(r)"
        case let .producerChanged(f, t): return "\(f): tensor '\(t)' produced different bytes on the second pass (input changed?)"
        }
    }
}
