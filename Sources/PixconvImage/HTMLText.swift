/// Text for HTML pages (`pixconv verify --report`): everything put into a page goes through `escape`.
public enum HTMLText {
    /// `text` as HTML character data or a quoted attribute value: `&`, `<`, `>`, `"` and `'` become
    /// character references, and characters HTML does not allow in a document (C0 controls other
    /// than tab, line feed and carriage return; DEL and the C1 controls; noncharacters) become U+FFFD,
    /// so that a prompt read from a file always shows as text and never as markup.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if isAllowed(scalar) { out.unicodeScalars.append(scalar) } else { out += "\u{FFFD}" }
            }
        }
        return out
    }

    private static func isAllowed(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v == 0x09 || v == 0x0A || v == 0x0D { return true }
        if v < 0x20 || (0x7F...0x9F).contains(v) { return false }
        if (0xFDD0...0xFDEF).contains(v) || v & 0xFFFE == 0xFFFE { return false }
        return true
    }
}
