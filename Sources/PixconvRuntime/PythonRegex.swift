import Foundation

/// A Python 3 `re` pattern (str pattern, no flags unless given) run by Foundation's
/// NSRegularExpression (ICU). The pattern is written as in Python; `init` rewrites the escapes
/// whose meaning differs between the two engines (formats/caption-cleaning.md, "Regular expressions"):
///
/// - `\w` / `\W`: Python's word characters are the code points for which `str.isalnum()` holds, or
///   `_` — exactly the general categories L* and N*, plus `_` (checked over the whole code space
///   with Python 3.11). ICU's `\w` adds marks (Mn, Mc, Me) and join controls and drops No.
/// - `\b` / `\B`: a boundary between a Python word character and anything else (or an end);
///   ICU's `\b` uses its own `\w` and skips combining marks.
/// - `\s` / `\S`: Python's `str.isspace()` set (with U+001C…U+001F and U+0085); ICU's lacks those.
/// - `\d` / `\D`: both are general category Nd; kept.
/// - `$` (outside a class): Python's end of string or before a final `\n`; ICU's also stops before
///   a final `\r`, U+0085, U+2028 …
/// Every word-character set is limited to code points Python's Unicode 14.0 knows
/// (`\p{Age=14.0}`), as `pythonLower` is.
/// Replacement templates are ICU's (`$1`), written by the caller.
struct PythonRegex {
    let regex: NSRegularExpression

    static let word = #"[[\p{L}\p{N}_]&&[\p{Age=14.0}]]"#
    static let notWord = #"[^[\p{L}\p{N}_]&&[\p{Age=14.0}]]"#
    static let space = #"[\t\n\x{0B}\f\r\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"#
    static let notSpace = #"[^\t\n\x{0B}\f\r\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"#
    static let boundary = "(?:(?<=\(word))(?!\(word))|(?<!\(word))(?=\(word)))"
    static let notBoundary = "(?:(?<=\(word))(?=\(word))|(?<!\(word))(?!\(word)))"

    init(_ python: String, ignoreCase: Bool = false) {
        let key = (ignoreCase ? "i:" : "c:") + python
        PythonRegex.lock.lock()
        defer { PythonRegex.lock.unlock() }
        if let cached = PythonRegex.cache[key] {
            regex = cached
            return
        }
        let icu = PythonRegex.translate(python)
        do {
            regex = try NSRegularExpression(pattern: icu, options: ignoreCase ? [.caseInsensitive] : [])
        } catch {
            preconditionFailure("bad translated pattern \(icu) (from \(python)): \(error)")
        }
        PythonRegex.cache[key] = regex
    }

    /// Compiled patterns by Python pattern (NSRegularExpression matching is thread-safe).
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: NSRegularExpression] = [:]

    /// Python pattern → ICU pattern (see the type's comment).
    static func translate(_ p: String) -> String {
        var out = ""
        var inClass = false
        let chars = Array(p)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count {
                let e = chars[i + 1]
                i += 2
                switch e {
                case "w": out += word
                case "W": out += notWord
                case "s": out += space
                case "S": out += notSpace
                case "b" where !inClass: out += boundary
                case "B" where !inClass: out += notBoundary
                default: out += "\\" + String(e)
                }
                continue
            }
            if inClass {
                if c == "]" {
                    inClass = false
                    out += "]"
                } else if c == "[" || c == "&" {
                    out += "\\" + String(c)  // literal in Python, a nested set / operator in ICU
                } else if c == "-", i + 1 < chars.count, chars[i + 1] == "]" {
                    out += "\\-"
                } else {
                    out.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case "[":
                inClass = true
                out += "["
                i += 1
                if i < chars.count, chars[i] == "^" { out += "^"; i += 1 }
                if i < chars.count, chars[i] == "]" { out += "\\]"; i += 1 }  // a leading ] is literal
            case "$":
                out += #"(?=\n?\z)"#
                i += 1
            default:
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// Python `re.sub(pattern, template, s)` (every non-overlapping match, left to right).
    func sub(_ template: String, _ s: String) -> String {
        let ns = s as NSString
        return regex.stringByReplacingMatches(in: s, options: [.withTransparentBounds], range: NSRange(location: 0, length: ns.length),
                                              withTemplate: template)
    }

    /// Python `re.sub` with a function of the match (UTF-16 ranges of `s`).
    func sub(_ s: String, _ replace: (NSTextCheckingResult, NSString) -> String) -> String {
        let ns = s as NSString
        var out = ""
        var last = 0
        for m in regex.matches(in: s, options: [.withTransparentBounds], range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: m.range.location - last))
            out += replace(m, ns)
            last = m.range.location + m.range.length
        }
        out += ns.substring(from: last)
        return out
    }

    /// Python `len(re.findall(pattern, s))`.
    func count(_ s: String) -> Int {
        regex.numberOfMatches(in: s, options: [.withTransparentBounds], range: NSRange(location: 0, length: (s as NSString).length))
    }

    /// Python `pattern.search(s)` is not None.
    func search(_ s: String) -> Bool { count(s) > 0 }

    /// Python `pattern.match(s, pos)` (anchored at `pos`, UTF-16 offset; lookbehind sees before `pos`):
    /// the match's UTF-16 range and groups, or nil.
    func match(_ ns: NSString, at pos: Int) -> NSTextCheckingResult? {
        regex.firstMatch(in: ns as String, options: [.anchored, .withTransparentBounds, .withoutAnchoringBounds],
                         range: NSRange(location: pos, length: ns.length - pos))
    }

    /// Python `pattern.search(s, pos)`: the first match at or after `pos`.
    func search(_ ns: NSString, from pos: Int) -> NSTextCheckingResult? {
        regex.firstMatch(in: ns as String, options: [.withTransparentBounds, .withoutAnchoringBounds],
                         range: NSRange(location: pos, length: ns.length - pos))
    }
}
