import PixconvCore

/// Errors of reading, writing and comparing images. `file` is the path, or "<memory>" for byte buffers.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    case notPNG(file: String)
    case truncated(file: String, offset: Int)
    case badChunk(file: String, offset: Int, reason: String)
    case badCRC(file: String, chunk: String, offset: Int, stored: UInt32, computed: UInt32)
    case libpng(file: String, message: String)
    case tooLarge(file: String, width: Int, height: Int)
    case badPixelCount(width: Int, height: Int, expected: Int, actual: Int)
    case badTextKey(String)
    case badTextValue(key: String, reason: String)
    case sizeMismatch(first: Int, second: Int)
    case tooSmall(width: Int, height: Int, minimum: Int)

    public var description: String {
        switch self {
        case let .notPNG(f): return "\(f): not a png file (bad signature)"
        case let .truncated(f, o): return "\(f): truncated png at byte \(o)"
        case let .badChunk(f, o, r): return "\(f): bad png chunk at byte \(o): \(r)"
        case let .badCRC(f, c, o, s, x):
            return "\(f): png chunk \(c) at byte \(o) has crc \(hex(s)), expected \(hex(x))"
        case let .libpng(f, m): return "\(f): libpng: \(m)"
        case let .tooLarge(f, w, h): return "\(f): image \(w)×\(h) is too large"
        case let .badPixelCount(w, h, e, a): return "image \(w)×\(h): expected \(e) rgb bytes, found \(a)"
        case let .badTextKey(k):
            return "png text key \"\(k)\" must be 1-79 printable ascii characters without leading, trailing or double spaces"
        case let .badTextValue(k, r): return "png text value for \"\(k)\": \(r)"
        case let .sizeMismatch(a, b): return "images differ in size: \(a) and \(b) values"
        case let .tooSmall(w, h, m): return "image \(w)×\(h) is smaller than the \(m)×\(m) ssim window"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
