/// PixArt's prompt preprocessing with `clean_caption=False`
/// (D: `pipeline_pixart_alpha.py::_text_preprocessing`): Python `text.lower().strip()`.
///
/// - `lower()`: full Unicode lowercase mapping per code point (`Unicode.Scalar.Properties
///   .lowercaseMapping`, e.g. "İ" → "i̇"), plus CPython's one context rule: capital sigma becomes
///   final sigma "ς" when preceded by a cased letter and not followed by one, skipping
///   case-ignorable code points (CPython `unicodeobject.c::handle_capital_sigma`).
/// - `strip()`: removes leading/trailing code points for which Python's `str.isspace()` holds
///   (which includes U+001C…U+001F and U+0085 but not U+200B or U+FEFF).
/// Swift's Unicode tables are newer than CPython 3.11's (Unicode 14.0): code points assigned after
/// `pythonUnicodeVersion` are treated as unassigned (unchanged, not cased, not case-ignorable),
/// as that Python treats them.
public func pixArtPreprocess(_ prompt: String) -> String {
    pythonStrip(pythonLower(prompt))
}

/// Unicode version of the reference Python's `unicodedata` (3.11: 14.0.0).
public let pythonUnicodeVersion = Unicode.Version(major: 14, minor: 0)

/// Whether the reference Python knows the code point (assigned in its Unicode version).
private func knownToPython(_ c: Unicode.Scalar) -> Bool {
    guard let age = c.properties.age else { return false }
    return age.major < pythonUnicodeVersion.major
        || (age.major == pythonUnicodeVersion.major && age.minor <= pythonUnicodeVersion.minor)
}

/// Python `str.lower()`.
public func pythonLower(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = String.UnicodeScalarView()
    for (i, c) in scalars.enumerated() {
        if c.value == 0x3A3 {
            out.append(Unicode.Scalar(isFinalSigma(scalars, i) ? 0x3C2 : 0x3C3)!)
        } else if c.properties.changesWhenLowercased && knownToPython(c) {
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
        } else {
            out.append(c)
        }
    }
    return String(out)
}

private func isFinalSigma(_ s: [Unicode.Scalar], _ i: Int) -> Bool {
    func ignorable(_ c: Unicode.Scalar) -> Bool { c.properties.isCaseIgnorable && knownToPython(c) }
    func cased(_ c: Unicode.Scalar) -> Bool { c.properties.isCased && knownToPython(c) }
    var j = i - 1
    while j >= 0, ignorable(s[j]) { j -= 1 }
    guard j >= 0, cased(s[j]) else { return false }
    j = i + 1
    while j < s.count, ignorable(s[j]) { j += 1 }
    return j == s.count || !cased(s[j])
}

/// Python `str.strip()` with no argument.
public func pythonStrip(_ s: String) -> String {
    let scalars = s.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isPythonSpace($0) }),
          let last = scalars.lastIndex(where: { !isPythonSpace($0) }) else { return "" }
    return String(scalars[first...last])
}

/// Python `str.isspace()` for one code point: bidirectional class WS, B or S, or category Zs
/// (CPython `_PyUnicode_IsWhitespace`).
public func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}
