/// A parsed JSON value, as produced by `StrictJSON.parse`.
///
/// Objects keep their members in input order (keys are unique); numbers keep their original text.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var number: JSONNumber? {
        if case let .number(n) = self { return n }
        return nil
    }

    /// The value as an exact integer of magnitude ≤ 2^53 (`2.0`, `1e3` and `2^53 + 1` are not).
    public var int: Int? { number?.integer() }

    public var double: Double? { number?.double }

    public var array: [JSONValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    public var object: JSONObject? {
        if case let .object(o) = self { return o }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON number, kept as its original text so that integer checks are exact.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal as written in the input (or as produced by `init(_:)`).
    public let text: String

    init(validatedText: String) { self.text = validatedText }

    public init(_ value: Int) { self.text = String(value) }

    /// Nil for NaN and infinities, which JSON cannot represent.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        // Swift prints the shortest text that round-trips; "1e-06" and "0.5" are valid JSON.
        var t = "\(value)"
        if t.hasSuffix(".0") { t.removeLast(2) }
        self.text = t
    }

    public var description: String { text }

    /// True when the literal has no fraction and no exponent (and is not NaN or ±Infinity).
    public var isIntegerLiteral: Bool {
        let digits = text.utf8.first == UInt8(ascii: "-") ? text.utf8.dropFirst() : text.utf8.dropFirst(0)
        return !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// False for Python's `NaN`, `Infinity` and `-Infinity` (see `Limits.allowNonFiniteNumbers`).
    public var isFinite: Bool { text != "NaN" && text != "Infinity" && text != "-Infinity" }

    /// The exact integer value when the literal is an integer with magnitude ≤ `maxMagnitude`.
    public func integer(maxMagnitude: UInt64 = 1 << 53) -> Int? {
        guard isIntegerLiteral else { return nil }
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard let magnitude = UInt64(digits), magnitude <= maxMagnitude, magnitude <= UInt64(Int.max) else { return nil }
        return negative ? -Int(magnitude) : Int(magnitude)
    }

    /// The exact non-negative integer value (≤ `maxValue`); nil for `-0`, fractions and exponents.
    public func nonNegativeInteger(maxValue: UInt64 = 1 << 53) -> Int? {
        guard text.utf8.first != UInt8(ascii: "-") else { return nil }
        return integer(maxMagnitude: maxValue)
    }

    public var double: Double? {
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return Double(text)
        }
    }
}

/// The members of a JSON object, in input order, with unique keys.
public struct JSONObject: Sendable, Hashable {
    /// One `"key": value` pair; `offset` is the byte offset of the key's opening quote in the
    /// parsed input (-1 for objects built in code). Equality ignores the offset.
    public struct Member: Sendable, Hashable {
        public let key: String
        public let value: JSONValue
        public let offset: Int

        public init(key: String, value: JSONValue, offset: Int = -1) {
            self.key = key
            self.value = value
            self.offset = offset
        }

        public static func == (a: Member, b: Member) -> Bool { a.key == b.key && a.value == b.value }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(key)
            hasher.combine(value)
        }
    }

    public private(set) var members: [Member]

    public init() { members = [] }

    /// Builds an object from pairs whose keys the caller guarantees to be unique.
    public init(_ pairs: [(String, JSONValue)]) {
        var seen = Set<String>()
        for (key, _) in pairs { precondition(seen.insert(key).inserted, "duplicate JSON key \(key)") }
        members = pairs.map { Member(key: $0.0, value: $0.1) }
    }

    init(uncheckedMembers: [Member]) { members = uncheckedMembers }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    /// The value for `key` (a linear search; objects here are small or iterated in order).
    public subscript(key: String) -> JSONValue? {
        members.first { $0.key == key }?.value
    }

    /// Objects are equal when they hold the same keys with equal values, in any order (RFC 8259
    /// §4: member order carries no meaning).
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.members.count == b.members.count else { return false }
        return a.members.allSatisfy { m in b[m.key] == m.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        for m in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) { hasher.combine(m) }
    }

    public func member(_ key: String) -> Member? {
        members.first { $0.key == key }
    }

    /// Sets `key`, replacing an existing member in place or appending a new one.
    public mutating func set(_ key: String, _ value: JSONValue) {
        if let k = members.firstIndex(where: { $0.key == key }) {
            members[k] = Member(key: key, value: value)
        } else {
            members.append(Member(key: key, value: value))
        }
    }
}

// MARK: - Literals, for building values in code

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = JSONNumber(value).map { .number($0) } ?? .null }
}
