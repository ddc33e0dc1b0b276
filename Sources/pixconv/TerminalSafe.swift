/// Text from an input file (tensor names, keys, metadata values) made safe to print on one
/// terminal line: C0 and C1 control characters, DEL and the Unicode line and paragraph separators
/// are written as escapes (`\n`, `\r`, `\t`, `\u{1b}`, …), so a hostile name can neither split an
/// error message into several lines nor send escape sequences to the terminal.
func terminalSafe(_ text: String) -> String {
    func needsEscape(_ v: UInt32) -> Bool { v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 }
    guard text.unicodeScalars.contains(where: { needsEscape($0.value) }) else { return text }
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where needsEscape(scalar.value): out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
