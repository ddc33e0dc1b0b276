/// A strict JSON reader (RFC 8259) and a stable writer, for safetensors headers, index files,
/// `config.json` files and the CLI's JSON output.
///
/// Stricter than Foundation and serde_json where they are lax (`formats/hostile-inputs.md`): duplicate keys, a byte-order mark, bytes after the top-level value, invalid UTF-8,
/// lone surrogates and nesting deeper than `Limits.maxDepth` are errors. Numbers keep their
/// original text, so `2.0` is never taken for the integer 2. The parser uses an explicit stack,
/// never recursion, so hostile nesting cannot overflow the call stack. Every error carries the
/// byte offset where it was found.
public enum StrictJSON {
    /// Bounds that keep hostile input from using unbounded memory or time.
    public struct Limits: Sendable, Equatable {
        /// Containers nested deeper than this are rejected (the top-level object is depth 1).
        /// Parsing never recurses, but freeing or comparing a parsed value recurses once per
        /// level, so keep this modest (a few thousand at most).
        public var maxDepth: Int
        /// Inputs longer than this many bytes are rejected before parsing.
        public var maxBytes: Int
        /// At most this many values (containers, strings, numbers, literals) in total.
        public var maxValues: Int
        /// Number literals longer than this many characters are rejected.
        public var maxNumberLength: Int
        /// Accept Python's `NaN`, `Infinity` and `-Infinity` (not JSON, but diffusers writes
        /// `"lambda_min_clipped": -Infinity` into scheduler configs). Kept as number text.
        public var allowNonFiniteNumbers = false

        public init(maxDepth: Int = 64, maxBytes: Int = 64 << 20, maxValues: Int = 4_000_000, maxNumberLength: Int = 256) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
            self.maxValues = maxValues
            self.maxNumberLength = maxNumberLength
        }
    }

    /// Parses one JSON document. `baseOffset` is added to every reported offset (for instance 8
    /// for a safetensors header, which starts after the length prefix).
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = Limits(), baseOffset: Int = 0)
        throws(JSONError) -> JSONValue
    {
        var parser = StrictJSONParser(bytes: bytes, limits: limits, base: baseOffset)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = Limits(), baseOffset: Int = 0) throws(JSONError) -> JSONValue {
        let result: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try parse(raw, limits: limits, baseOffset: baseOffset)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    /// Offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
    /// surrogates, nothing above U+10FFFF), or nil when all of `bytes` is valid.
    public static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] < 0x80 {
                i += 1
                continue
            }
            guard let length = utf8SequenceLength(bytes, at: i) else { return i }
            i += length
        }
        return nil
    }

    /// Length of the well-formed multi-byte UTF-8 sequence starting at `i`, or nil.
    static func utf8SequenceLength(_ p: UnsafeRawBufferPointer, at i: Int) -> Int? {
        let lead = p[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F  // U+D800...U+DFFF are not scalar values
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F  // nothing above U+10FFFF
        default: return nil
        }
        guard p.count - i >= length else { return nil }
        guard p[i + 1] >= low, p[i + 1] <= high else { return nil }
        for k in 2..<length where p[i + k] & 0xC0 != 0x80 { return nil }
        return length
    }
}

/// One container being filled while parsing; a class so that appending never copies.
private final class StrictJSONFrame {
    let isObject: Bool
    var items: [JSONValue] = []
    var members: [JSONObject.Member] = []
    /// Keys seen so far, built only once an object outgrows a linear scan of `members`.
    var keys: Set<String>?
    var pendingKey = ""
    var pendingKeyOffset = 0

    init(isObject: Bool) { self.isObject = isObject }
}

/// The iterative parser behind `StrictJSON.parse`.
private struct StrictJSONParser {
    let p: UnsafeRawBufferPointer
    let limits: StrictJSON.Limits
    let base: Int
    var i = 0
    var valueCount = 0

    init(bytes: UnsafeRawBufferPointer, limits: StrictJSON.Limits, base: Int) {
        self.p = bytes
        self.limits = limits
        self.base = base
    }

    func error(_ kind: JSONError.Kind, at offset: Int? = nil) -> JSONError {
        JSONError(kind: kind, offset: base + (offset ?? i))
    }

    mutating func skipWhitespace() {
        while i < p.count {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    mutating func countValue() throws(JSONError) {
        valueCount += 1
        if valueCount > limits.maxValues { throw error(.tooManyValues(limit: limits.maxValues)) }
    }

    func expectByte() throws(JSONError) -> UInt8 {
        guard i < p.count else { throw error(.unexpectedEnd) }
        return p[i]
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        guard p.count <= limits.maxBytes else { throw error(.tooLarge(limit: limits.maxBytes), at: 0) }
        var stack: [StrictJSONFrame] = []
        skipWhitespace()
        while true {
            // A value starts at `i`.
            var value: JSONValue
            let c = try expectByte()
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard stack.count < limits.maxDepth else { throw error(.tooDeep(limit: limits.maxDepth)) }
                try countValue()
                let isObject = c == UInt8(ascii: "{")
                i += 1
                skipWhitespace()
                let next = try expectByte()
                if next == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    i += 1
                    value = isObject ? .object(JSONObject()) : .array([])
                } else {
                    let frame = StrictJSONFrame(isObject: isObject)
                    if isObject { try parseKey(into: frame) }
                    stack.append(frame)
                    continue
                }
            case UInt8(ascii: "\""):
                try countValue()
                value = .string(try parseString())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                if limits.allowNonFiniteNumbers, c == UInt8(ascii: "-"), i + 1 < p.count, p[i + 1] == UInt8(ascii: "I") {
                    try parseLiteral("-Infinity")
                    value = .number(JSONNumber(validatedText: "-Infinity"))
                } else {
                    try countValue()
                    value = .number(try parseNumber())
                }
            case UInt8(ascii: "N") where limits.allowNonFiniteNumbers:
                try parseLiteral("NaN")
                value = .number(JSONNumber(validatedText: "NaN"))
            case UInt8(ascii: "I") where limits.allowNonFiniteNumbers:
                try parseLiteral("Infinity")
                value = .number(JSONNumber(validatedText: "Infinity"))
            case UInt8(ascii: "t"):
                try parseLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try parseLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try parseLiteral("null")
                value = .null
            default:
                throw error(.unexpectedByte(c, expected: "a value"))
            }
            // A value is complete: hand it to the enclosing containers, closing them as needed.
            while true {
                guard let frame = stack.last else {
                    skipWhitespace()
                    guard i == p.count else { throw error(.trailingData) }
                    return value
                }
                if frame.isObject {
                    frame.members.append(JSONObject.Member(key: frame.pendingKey, value: value, offset: frame.pendingKeyOffset))
                } else {
                    frame.items.append(value)
                }
                skipWhitespace()
                let separator = try expectByte()
                if separator == UInt8(ascii: ",") {
                    i += 1
                    skipWhitespace()
                    if frame.isObject { try parseKey(into: frame) }
                    break
                }
                let closer = frame.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard separator == closer else {
                    throw error(.unexpectedByte(separator, expected: frame.isObject ? "',' or '}'" : "',' or ']'"))
                }
                i += 1
                stack.removeLast()
                value = frame.isObject ? .object(JSONObject(uncheckedMembers: frame.members)) : .array(frame.items)
            }
        }
    }

    /// Reads `"key"` and the `:` after it, rejecting a key already seen in this object.
    mutating func parseKey(into frame: StrictJSONFrame) throws(JSONError) {
        let start = i
        let c = try expectByte()
        guard c == UInt8(ascii: "\"") else { throw error(.unexpectedByte(c, expected: "a string key")) }
        let key = try parseString()
        // Small objects (tensor entries, configs) are checked by scanning; large ones by hashing.
        if frame.keys == nil, frame.members.count >= 16 { frame.keys = Set(frame.members.map(\.key)) }
        let duplicate: Bool
        if frame.keys != nil {
            duplicate = !frame.keys!.insert(key).inserted
        } else {
            duplicate = frame.members.contains { $0.key == key }
        }
        guard !duplicate else { throw error(.duplicateKey(key), at: start) }
        skipWhitespace()
        let colon = try expectByte()
        guard colon == UInt8(ascii: ":") else { throw error(.unexpectedByte(colon, expected: "':'")) }
        i += 1
        skipWhitespace()
        frame.pendingKey = key
        frame.pendingKeyOffset = base + start
    }

    mutating func parseLiteral(_ word: StaticString) throws(JSONError) {
        try countValue()
        let n = word.utf8CodeUnitCount
        guard p.count - i >= n else { throw error(.unexpectedEnd) }
        for k in 0..<n where p[i + k] != word.utf8Start[k] {
            throw error(.unexpectedByte(p[i + k], expected: "'\(word)'"), at: i + k)
        }
        i += n
    }

    /// Reads a string starting at its opening quote; validates UTF-8 and escapes.
    mutating func parseString() throws(JSONError) -> String {
        i += 1
        let start = i
        // Fast path: plain ASCII without escapes.
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
            i += 1
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: p[start..<i]))
        while true {
            let c = try expectByte()
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &out)
            case 0..<0x20:
                throw error(.controlCharacterInString)
            case 0x80...:
                guard let length = StrictJSON.utf8SequenceLength(p, at: i) else { throw error(.invalidUTF8) }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[i..<(i + length)]))
                i += length
            default:
                out.append(c)
                i += 1
            }
        }
    }

    mutating func parseEscape(into out: inout [UInt8]) throws(JSONError) {
        let start = i
        i += 1
        let c = try expectByte()
        i += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4(escapeStart: start)
            if (0xDC00...0xDFFF).contains(scalar) { throw error(.badSurrogate, at: start) }
            if (0xD800...0xDBFF).contains(scalar) {
                guard p.count - i >= 2, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
                    throw error(.badSurrogate, at: start)
                }
                i += 2
                let low = try parseHex4(escapeStart: i - 2)
                guard (0xDC00...0xDFFF).contains(low) else { throw error(.badSurrogate, at: start) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let u = Unicode.Scalar(scalar) else { throw error(.badSurrogate, at: start) }
            UTF8.encode(u) { out.append($0) }
        default:
            throw error(.badEscape, at: start)
        }
    }

    mutating func parseHex4(escapeStart: Int) throws(JSONError) -> UInt32 {
        guard p.count - i >= 4 else { throw error(.badEscape, at: escapeStart) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw error(.badEscape, at: escapeStart)
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as text.
    mutating func parseNumber() throws(JSONError) -> JSONNumber {
        let start = i
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        func digits() throws(JSONError) {
            guard i < p.count, isDigit(p[i]) else { throw error(.badNumber, at: start) }
            while i < p.count, isDigit(p[i]) { i += 1 }
        }
        if p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < p.count else { throw error(.badNumber, at: start) }
        if p[i] == UInt8(ascii: "0") {
            i += 1
            if i < p.count, isDigit(p[i]) { throw error(.badNumber, at: start) }  // leading zero
        } else {
            try digits()
        }
        if i < p.count, p[i] == UInt8(ascii: ".") {
            i += 1
            try digits()
        }
        if i < p.count, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            i += 1
            if i < p.count, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            try digits()
        }
        guard i - start <= limits.maxNumberLength else { throw error(.numberTooLong, at: start) }
        return JSONNumber(validatedText: String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<i]), as: UTF8.self))
    }
}
