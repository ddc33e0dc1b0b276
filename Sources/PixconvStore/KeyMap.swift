import PixconvCore

/// A declarative table of checkpoint key renames, read from the TSV files in `formats/`
/// (`keymap-pixart-original.tsv`, `keymap-diffusers-legacy.tsv`); the column rules are written
/// at the top of those files. `KeyMapTables.swift` embeds their text, and a test checks that the
/// embedded copies equal the files.
public struct KeyMap: Sendable {
    /// What becomes of one source tensor.
    public enum Operation: String, Sendable {
        case copy, split, drop
    }

    /// One rule applied to one concrete key.
    public struct Mapping: Sendable, Equatable {
        public var source: String
        public var operation: Operation
        /// Target names; for `split`, part i of the source goes to `targets[i]`.
        public var targets: [String]
    }

    struct Rule: Sendable {
        var pattern: [Token]
        var operation: Operation
        var targets: [[Token]]
        var line: Int
    }

    /// A pattern is a sequence of literal text and placeholders.
    enum Token: Sendable, Equatable {
        case literal(String)
        case index(String)  // {n}: one or more digits
        case path(String)  // {p}: one or more dotted segments
        case rest  // *: the remainder of the key (only at the end)
    }

    let rules: [Rule]

    /// Parses a table; throws on a malformed line (a programmer error in `formats/`, but still reported).
    public init(tsv: String) throws(KeyMapError) {
        var parsed: [Rule] = []
        for (number, rawLine) in tsv.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingSuffixWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let columns = line.split(separator: "\t").map(String.init)
            guard columns.count >= 2, let op = Operation(rawValue: columns[1]) else {
                throw .malformed(line: number + 1, text: line)
            }
            let targets = columns.count > 2 ? columns[2].split(separator: ",").map { KeyMap.tokens(String($0)) } : []
            switch op {
            case .copy where targets.count != 1, .split where targets.count < 2, .drop where !targets.isEmpty:
                throw .malformed(line: number + 1, text: line)
            default: break
            }
            parsed.append(Rule(pattern: KeyMap.tokens(columns[0]), operation: op, targets: targets, line: number + 1))
        }
        rules = parsed
    }

    /// The mapping for `key`: the first rule that matches, or nil when none does.
    public func mapping(for key: String) -> Mapping? {
        for rule in rules {
            guard let bindings = KeyMap.match(rule.pattern, Substring(key)) else { continue }
            let targets = rule.targets.map { KeyMap.render($0, bindings) }
            return Mapping(source: key, operation: rule.operation, targets: targets)
        }
        return nil
    }

    // MARK: - Patterns

    static func tokens(_ pattern: String) -> [Token] {
        var out: [Token] = []
        var literal = ""
        var i = pattern.startIndex
        while i < pattern.endIndex {
            let c = pattern[i]
            if c == "{", let close = pattern[i...].firstIndex(of: "}") {
                if !literal.isEmpty { out.append(.literal(literal)); literal = "" }
                let name = String(pattern[pattern.index(after: i)..<close])
                out.append(name == "n" || name.hasPrefix("n") ? .index(name) : .path(name))
                i = pattern.index(after: close)
                continue
            }
            if c == "*" && pattern.index(after: i) == pattern.endIndex {
                if !literal.isEmpty { out.append(.literal(literal)); literal = "" }
                out.append(.rest)
            } else {
                literal.append(c)
            }
            i = pattern.index(after: i)
        }
        if !literal.isEmpty { out.append(.literal(literal)) }
        return out
    }

    typealias Bindings = [String: Substring]

    /// Backtracking match of the whole key against the pattern (patterns are short).
    static func match(_ pattern: [Token], _ key: Substring, _ bindings: Bindings = [:]) -> Bindings? {
        guard let first = pattern.first else { return key.isEmpty ? bindings : nil }
        let rest = Array(pattern.dropFirst())
        switch first {
        case let .literal(text):
            guard key.hasPrefix(text) else { return nil }
            return match(rest, key.dropFirst(text.count), bindings)
        case let .index(name):
            let digits = key.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return nil }
            var b = bindings
            b[name] = digits
            return match(rest, key.dropFirst(digits.count), b)
        case let .path(name):
            // Try every prefix that ends at a segment boundary, shortest first.
            var end = key.startIndex
            while let dot = key[end...].firstIndex(of: ".") {
                let candidate = key[key.startIndex..<dot]
                if !candidate.isEmpty {
                    var b = bindings
                    b[name] = candidate
                    if let found = match(rest, key[dot...], b) { return found }
                }
                end = key.index(after: dot)
            }
            return nil
        case .rest:
            guard !key.isEmpty else { return nil }
            var b = bindings
            b["*"] = key
            return b
        }
    }

    static func render(_ tokens: [Token], _ bindings: Bindings) -> String {
        var out = ""
        for token in tokens {
            switch token {
            case let .literal(text): out += text
            case let .index(name), let .path(name): out += bindings[name].map(String.init) ?? ""
            case .rest: out += bindings["*"].map(String.init) ?? ""
            }
        }
        return out
    }
}

/// Errors of the key-map tables.
public enum KeyMapError: Error, CustomStringConvertible, Equatable {
    case malformed(line: Int, text: String)

    public var description: String {
        switch self {
        case let .malformed(line, text): return "key map line \(line) is malformed: \(text)"
        }
    }
}

extension Substring {
    func trimmingSuffixWhitespace() -> String {
        var s = self
        while let last = s.last, last == " " || last == "\r" || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
