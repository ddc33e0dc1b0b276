/// Serialises JSON values with stable output, for the CLI's `--json` output and for headers.
///
/// Compact output matches Python's `json.dumps(v, separators=(",", ":"), ensure_ascii=False)`;
/// `indent: 2` matches `json.dumps(v, indent=2, ensure_ascii=False)` (with `sort_keys=True`
/// when `sortKeys` is set). Keys sort by their UTF-8 bytes, i.e. by code point, as Python does.
extension JSONValue {
    public func serialized(sortKeys: Bool = true, indent: Int? = nil) -> String {
        var out = ""
        write(to: &out, sortKeys: sortKeys, indent: indent, level: 0)
        return out
    }

    /// The serialised text as UTF-8 bytes.
    public func serializedBytes(sortKeys: Bool = true, indent: Int? = nil) -> [UInt8] {
        Array(serialized(sortKeys: sortKeys, indent: indent).utf8)
    }

    private func write(to out: inout String, sortKeys: Bool, indent: Int?, level: Int) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n.text
        case let .string(s): JSONValue.writeEscaped(s, to: &out)
        case let .array(items):
            guard !items.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += "," }
                JSONValue.newline(&out, indent: indent, level: level + 1)
                item.write(to: &out, sortKeys: sortKeys, indent: indent, level: level + 1)
            }
            JSONValue.newline(&out, indent: indent, level: level)
            out += "]"
        case let .object(o):
            guard !o.isEmpty else {
                out += "{}"
                return
            }
            var members = o.members
            if sortKeys { members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
            out += "{"
            for (k, member) in members.enumerated() {
                if k > 0 { out += "," }
                JSONValue.newline(&out, indent: indent, level: level + 1)
                JSONValue.writeEscaped(member.key, to: &out)
                out += indent == nil ? ":" : ": "
                member.value.write(to: &out, sortKeys: sortKeys, indent: indent, level: level + 1)
            }
            JSONValue.newline(&out, indent: indent, level: level)
            out += "}"
        }
    }

    private static func newline(_ out: inout String, indent: Int?, level: Int) {
        guard let indent else { return }
        out += "\n"
        out += String(repeating: " ", count: indent * level)
    }

    /// Writes `s` as a JSON string literal: `"` and `\` escaped, control characters as the short
    /// escapes or `\u00xx`, everything else (including non-ASCII) as is.
    public static func writeEscaped(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
