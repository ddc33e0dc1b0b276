import Foundation

// ftfy 6.3.1 `fix_text(text)` with its default settings, as diffusers' `_clean_caption` calls it,
// reduced to the repairs pixconv reproduces (formats/caption-cleaning.md, "ftfy"):
// per line, repeated until nothing changes: `unescape_html` (only while no line so far had a `<`),
// `fix_encoding` (NOT reproduced: mojibake is left as it is), `fix_c1_controls`,
// `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`, `fix_line_breaks`,
// (`fix_surrogates`: a Swift string holds no lone surrogates), `remove_terminal_escapes`,
// `remove_control_chars`, then NFC.

/// ftfy `fix_text(text)` without the mojibake repair (`fix_encoding`).
public func ftfyFixText(_ text: String) -> String {
    var unescape = true  // unescape_html="auto": off from the first line that has a "<" on
    var out = ""
    var line = String.UnicodeScalarView()
    func flush() {
        guard !line.isEmpty else { return }
        let segment = String(line)
        if unescape, segment.unicodeScalars.contains("<") { unescape = false }
        out += ftfyFixSegment(segment, unescapeHTML: unescape)
        line = String.UnicodeScalarView()
    }
    for c in text.unicodeScalars {
        line.append(c)
        if c == "\n" { flush() }
    }
    flush()
    return out
}

/// ftfy `fix_and_explain` on one line: the fixers in ftfy's order until the text stays the same.
func ftfyFixSegment(_ segment: String, unescapeHTML: Bool) -> String {
    var text = segment
    while true {
        let original = text
        if unescapeHTML { text = ftfyUnescapeHTML(text) }
        text = ftfyFixC1Controls(text)
        text = ftfyFixLatinLigatures(text)
        text = ftfyFixCharacterWidth(text)
        text = ftfyUncurlQuotes(text)
        text = ftfyFixLineBreaks(text)
        text = ftfyRemoveTerminalEscapes(text)
        text = ftfyRemoveControlChars(text)
        text = text.precomposedStringWithCanonicalMapping  // unicodedata.normalize("NFC", text)
        if text.unicodeScalars.elementsEqual(original.unicodeScalars) { return text }
    }
}

private func mapScalars(_ s: String, _ f: (Unicode.Scalar) -> String?) -> String {
    var out = ""
    for c in s.unicodeScalars {
        if let r = f(c) { out += r } else { out.unicodeScalars.append(c) }
    }
    return out
}

/// ftfy's entity names: html5's names that end in `;`, and upper-case forms of some of them.
let ftfyEntities: [String: String] = {
    var table: [String: String] = [:]
    for (name, value) in html5Entities where name.hasSuffix(";") { table[name] = value }
    for (name, value) in parseEntityRows(ftfyUpperEntityRows) { table[name + ";"] = value }
    return table
}()

private let ftfyEntityPattern = PythonRegex(#"&#?[0-9A-Za-z]{1,24};"#)

/// ftfy `unescape_html`: `&name;` from its table; `&#…;` through `html.unescape` when that
/// consumes the `;`; anything else kept.
func ftfyUnescapeHTML(_ s: String) -> String {
    ftfyEntityPattern.sub(s) { m, ns in
        let text = ns.substring(with: m.range)
        if let v = ftfyEntities[String(text.dropFirst())] { return v }
        if text.hasPrefix("&#") {
            let unescaped = pythonHTMLUnescape(text)
            return unescaped.unicodeScalars.contains(";") ? text : unescaped
        }
        return text
    }
}

/// ftfy `fix_c1_controls`: U+0080…U+009F read as Windows-1252 bytes (sloppy: undefined ones stay).
func ftfyFixC1Controls(_ s: String) -> String {
    mapScalars(s) { (0x80...0x9F).contains($0.value) ? windows1252[$0.value] : nil }
}

private let latinLigatures: [UInt32: String] = [
    0x132: "IJ", 0x133: "ij", 0x149: "\u{2BC}n", 0x1F1: "DZ", 0x1F2: "Dz", 0x1F3: "dz", 0x1C4: "D\u{17D}",
    0x1C5: "D\u{17E}", 0x1C6: "d\u{17E}", 0x1C7: "LJ", 0x1C8: "Lj", 0x1C9: "lj", 0x1CA: "NJ", 0x1CB: "Nj", 0x1CC: "nj",
    0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "\u{17F}t", 0xFB06: "st",
]

/// ftfy `fix_latin_ligatures`.
func ftfyFixLatinLigatures(_ s: String) -> String { mapScalars(s) { latinLigatures[$0.value] } }

/// ftfy `fix_character_width`: U+3000 → space, U+FF01…U+FFEF → their NFKC form where it differs.
func ftfyFixCharacterWidth(_ s: String) -> String {
    mapScalars(s) { c in
        if c.value == 0x3000 { return " " }
        guard (0xFF01..<0xFFF0).contains(c.value) else { return nil }
        let one = String(c)
        let alt = one.precomposedStringWithCompatibilityMapping
        return alt.unicodeScalars.elementsEqual(one.unicodeScalars) ? nil : alt
    }
}

/// ftfy `uncurl_quotes`: U+201C…U+201F → `"`, then U+02BC, U+2018…U+201B → `'`.
func ftfyUncurlQuotes(_ s: String) -> String {
    mapScalars(s) { c in
        switch c.value {
        case 0x201C...0x201F: return "\""
        case 0x2BC, 0x2018...0x201B: return "'"
        default: return nil
        }
    }
}

/// ftfy `fix_line_breaks`: CRLF, CR, U+2028, U+2029, U+0085 → LF.
func ftfyFixLineBreaks(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    let scalars = Array(s.unicodeScalars)
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        if c == "\r", i + 1 < scalars.count, scalars[i + 1] == "\n" {
            out.append("\n")
            i += 2
            continue
        }
        switch c.value {
        case 0x0D, 0x2028, 0x2029, 0x85: out.append("\n")
        default: out.append(c)
        }
        i += 1
    }
    return String(out)
}

private let ansiPattern = PythonRegex(#"\x1b\[((?:\d|;)*)([a-zA-Z])"#)

/// ftfy `remove_terminal_escapes`.
func ftfyRemoveTerminalEscapes(_ s: String) -> String { ansiPattern.sub("", s) }

/// ftfy `remove_control_chars`: U+0000…U+0008, U+000B, U+000E…U+001F, U+007F, U+206A…U+206F,
/// U+FEFF, U+FFF9…U+FFFC.
func ftfyRemoveControlChars(_ s: String) -> String {
    String(String.UnicodeScalarView(s.unicodeScalars.filter { c in
        switch c.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return false
        default: return true
        }
    }))
}
