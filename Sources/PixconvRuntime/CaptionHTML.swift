import Foundation

// The Python library functions diffusers' `_clean_caption` calls, reproduced for it:
// `urllib.parse.unquote_plus`, `html.unescape` and `BeautifulSoup(text, "html.parser").text`
// (formats/caption-cleaning.md).

// MARK: - urllib.parse.unquote_plus

/// Python 3.11 `urllib.parse.unquote_plus(s)`: `+` → space, then `unquote`: each maximal run of
/// ASCII characters has its `%XX` escapes (two hex digits, either case) turned into bytes and the
/// run decoded as UTF-8 with `errors="replace"` (one U+FFFD per maximal invalid subsequence);
/// characters outside ASCII are kept as they are; a `%` without two hex digits stays.
public func pythonUnquotePlus(_ s: String) -> String {
    pythonUnquote(String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "+" ? " " : $0 })))
}

/// Python 3.11 `urllib.parse.unquote(s)` (UTF-8, errors="replace").
public func pythonUnquote(_ s: String) -> String {
    guard s.unicodeScalars.contains("%") else { return s }
    var out = String.UnicodeScalarView()
    var ascii: [UInt8] = []
    func flush() {
        guard !ascii.isEmpty else { return }
        var bytes: [UInt8] = []
        var i = 0
        while i < ascii.count {
            if ascii[i] == 0x25, i + 2 < ascii.count,
               let hi = hexValue(ascii[i + 1]), let lo = hexValue(ascii[i + 2]) {
                bytes.append(hi << 4 | lo)
                i += 3
            } else {
                bytes.append(ascii[i])
                i += 1
            }
        }
        out.append(contentsOf: String(decoding: bytes, as: UTF8.self).unicodeScalars)
        ascii.removeAll()
    }
    for c in s.unicodeScalars {
        if c.isASCII {
            ascii.append(UInt8(c.value))
        } else {
            flush()
            out.append(c)
        }
    }
    flush()
    return String(out)
}

private func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    case 0x61...0x66: return b - 0x61 + 10
    default: return nil
    }
}

// MARK: - html.unescape

/// Python's `html.entities.html5`: names with their `;` and, for the legacy ones, without.
let html5Entities: [String: String] = parseEntityRows(html5EntityRows)

func parseEntityRows(_ rows: String) -> [String: String] {
    var table: [String: String] = [:]
    for line in rows.split(separator: "\n") {
        let parts = line.split(separator: "\t")
        guard parts.count == 2 else { continue }
        let scalars = parts[1].split(separator: " ").compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
        table[String(parts[0])] = String(String.UnicodeScalarView(scalars))
    }
    return table
}

/// Python's `html._invalid_charrefs`: numeric references replaced by another character.
let htmlInvalidCharrefs: [UInt32: String] = [
    0x00: "\u{FFFD}", 0x0D: "\r", 0x80: "\u{20AC}", 0x81: "\u{81}", 0x82: "\u{201A}", 0x83: "\u{0192}",
    0x84: "\u{201E}", 0x85: "\u{2026}", 0x86: "\u{2020}", 0x87: "\u{2021}", 0x88: "\u{02C6}", 0x89: "\u{2030}",
    0x8A: "\u{0160}", 0x8B: "\u{2039}", 0x8C: "\u{0152}", 0x8D: "\u{8D}", 0x8E: "\u{017D}", 0x8F: "\u{8F}",
    0x90: "\u{90}", 0x91: "\u{2018}", 0x92: "\u{2019}", 0x93: "\u{201C}", 0x94: "\u{201D}", 0x95: "\u{2022}",
    0x96: "\u{2013}", 0x97: "\u{2014}", 0x98: "\u{02DC}", 0x99: "\u{2122}", 0x9A: "\u{0161}", 0x9B: "\u{203A}",
    0x9C: "\u{0153}", 0x9D: "\u{9D}", 0x9E: "\u{017E}", 0x9F: "\u{0178}",
]

/// Python's `html._invalid_codepoints`: numeric references that decode to nothing.
func htmlInvalidCodepoint(_ n: UInt32) -> Bool {
    switch n {
    case 0x1...0x8, 0xB, 0xE...0x1F, 0x7F...0x9F, 0xFDD0...0xFDEF: return true
    default: return n & 0xFFFE == 0xFFFE && n <= 0x10FFFF
    }
}

/// A run of decimal or hex digits as a number, saturating at 0x110000 (any larger value reads
/// the same: beyond Unicode).
private func codePointNumber<S: Sequence>(_ digits: S, radix: UInt32) -> UInt32 where S.Element == Unicode.Scalar {
    var n: UInt32 = 0
    for d in digits {
        let v: UInt32
        switch d.value {
        case 0x30...0x39: v = d.value - 0x30
        case 0x41...0x46: v = d.value - 0x41 + 10
        case 0x61...0x66: v = d.value - 0x61 + 10
        default: continue
        }
        n = min(n * radix + v, 0x110000)
    }
    return n
}

private let charrefPattern = PythonRegex(#"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"#)

/// Python 3.11 `html.unescape(s)`: numeric references (decimal or hex, `;` optional) with
/// Python's replacement rules (`_invalid_charrefs`, surrogates and values past U+10FFFF → U+FFFD,
/// `_invalid_codepoints` → nothing); named references from the HTML5 table, with the longest
/// known prefix of an unknown name decoded (`&notit;` → `¬it;`), else left as they are.
public func pythonHTMLUnescape(_ s: String) -> String {
    guard s.unicodeScalars.contains("&") else { return s }
    return charrefPattern.sub(s) { m, ns in
        let body = Array(ns.substring(with: m.range(at: 1)).unicodeScalars)
        if body[0] == "#" {
            let hex = body[1] == "x" || body[1] == "X"
            let num = codePointNumber(body.dropFirst(hex ? 2 : 1), radix: hex ? 16 : 10)
            if let r = htmlInvalidCharrefs[num] { return r }
            if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF { return "\u{FFFD}" }
            if htmlInvalidCodepoint(num) { return "" }
            return String(Unicode.Scalar(num)!)
        }
        let name = String(String.UnicodeScalarView(body))
        if let v = html5Entities[name] { return v }
        var x = body.count - 1
        while x > 1 {
            if let v = html5Entities[String(String.UnicodeScalarView(body[..<x]))] {
                return v + String(String.UnicodeScalarView(body[x...]))
            }
            x -= 1
        }
        return "&" + name
    }
}

// MARK: - BeautifulSoup(text, "html.parser").text

/// `BeautifulSoup(s, features="html.parser").text` (beautifulsoup4 4.15 on Python 3.11.7's
/// `html.parser`): the document's strings in order, without comments, declarations, doctypes,
/// processing instructions and the contents of `script`, `style`, `template`, `rt` and `rp`;
/// `<![CDATA[…]]>` contents count. See `SoupText` for the parser's rules.
public func soupText(_ s: String) -> String {
    var parser = SoupText(s)
    return parser.run()
}

/// Python's `html.parser.HTMLParser` tokenizer (with `convert_charrefs=False`, as bs4 sets it) fed
/// the whole text and closed, driving bs4's tree builder reduced to what `.text` needs: which
/// strings are kept, and bs4's collapsing of a string of only ASCII whitespace to one space or
/// newline outside `pre`/`textarea`. Positions are UTF-16 offsets (every delimiter is ASCII).
struct SoupText {
    private let ns: NSString
    private let u: [UInt16]
    private var cdataElem: String? = nil

    // bs4's side
    private struct OpenTag { var name: String; var id: Int }
    private var text = ""
    private var currentData: [String] = []
    private var tagStack: [OpenTag] = []
    private var preserveStack: [Int] = []
    private var containerStack: [OpenTag] = []
    private var alreadyClosedEmpty: [String] = []
    private var nextID = 0

    private static let stringContainers: Set<String> = ["rt", "rp", "style", "script", "template"]
    private static let preserveWhitespace: Set<String> = ["pre", "textarea"]
    private static let emptyElements: Set<String> = [
        "area", "base", "basefont", "bgsound", "br", "col", "command", "embed", "frame", "hr", "image", "img",
        "input", "isindex", "keygen", "link", "menuitem", "meta", "nextid", "param", "source", "spacer", "track", "wbr"]

    private static let interestingNormal = PythonRegex("[&<]")
    private static let tagfind = PythonRegex(#"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*"#)
    private static let attrfind = PythonRegex(
        #"((?<=[\'"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*(\'[^\']*\'|"[^"]*"|(?![\'"])[^>\s]*))?(?:\s|/(?!>))*"#)
    private static let locateStarttagEnd = PythonRegex(
        #"<[a-zA-Z][^\t\n\r\f />\x00]*(?:[\s/]*(?:(?<=['"\s/])[^\s/>][^\s/=>]*(?:\s*=+\s*(?:'[^']*'|"[^"]*"|(?!['"])[^>\s]*)\s*)?(?:\s|/(?!>))*)*)?\s*"#)
    private static let endtagfind = PythonRegex(#"</\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>"#)
    private static let commentclose = PythonRegex(#"--\s*>"#)
    private static let declname = PythonRegex(#"[a-zA-Z][-_.a-zA-Z0-9]*\s*"#)
    private static let markedSectionClose = PythonRegex(#"]\s*]\s*>"#)
    private static let msMarkedSectionClose = PythonRegex(#"]\s*>"#)

    /// Where Python's parser raises (a `<![` marked section without a known keyword): bs4 then
    /// rejects the markup and diffusers' call fails; here the text is kept as it was.
    private struct Rejected: Error {}

    private let input: String
    private var rawStart = 0

    init(_ s: String) {
        input = s
        ns = s as NSString
        u = Array(s.utf16)
    }

    mutating func run() -> String {
        do {
            try goahead(end: false)
            try goahead(end: true)
        } catch {
            return input
        }
        endData()
        return text
    }

    // MARK: bs4 tree builder (BeautifulSoup.endData / pushTag / popTag / _popToTag)

    private enum StringKind { case navigable, cdata, excluded }

    private mutating func endData(_ kind: StringKind = .navigable) {
        guard !currentData.isEmpty else { return }
        var data = currentData.joined()
        currentData = []
        if preserveStack.isEmpty, data.unicodeScalars.allSatisfy({ " \n\t\u{0C}\r".unicodeScalars.contains($0) }) {
            data = data.unicodeScalars.contains("\n") ? "\n" : " "
        }
        switch kind {
        case .excluded: return
        case .cdata: text += data
        case .navigable:
            if let top = containerStack.last, SoupText.stringContainers.contains(top.name) { return }
            text += data
        }
    }

    private mutating func special(_ data: String, _ kind: StringKind) {
        endData()
        currentData.append(data)
        endData(kind)
    }

    private mutating func soupStartTag(_ name: String) {
        endData()
        let tag = OpenTag(name: name, id: nextID)
        nextID += 1
        tagStack.append(tag)
        if SoupText.preserveWhitespace.contains(name) { preserveStack.append(tag.id) }
        if SoupText.stringContainers.contains(name) { containerStack.append(tag) }
    }

    private mutating func popTag() {
        let tag = tagStack.removeLast()
        if preserveStack.last == tag.id { preserveStack.removeLast() }
        if containerStack.last?.id == tag.id { containerStack.removeLast() }
    }

    private mutating func soupEndTag(_ name: String) {
        endData()
        guard tagStack.contains(where: { $0.name == name }) else { return }
        while let top = tagStack.last {
            popTag()
            if top.name == name { break }
        }
    }

    // MARK: bs4's BeautifulSoupHTMLParser handlers

    private mutating func handleStartTag(_ name: String, selfClosing: Bool) {
        soupStartTag(name)
        if selfClosing {
            soupEndTag(name)
        } else if SoupText.emptyElements.contains(name) {
            soupEndTag(name)
            alreadyClosedEmpty.append(name)
        }
    }

    private mutating func handleEndTag(_ name: String) {
        if let k = alreadyClosedEmpty.firstIndex(of: name) {
            alreadyClosedEmpty.remove(at: k)
        } else {
            soupEndTag(name)
        }
    }

    private mutating func handleData(_ s: String) { currentData.append(s) }

    /// bs4 `handle_charref` → `UnicodeDammit.numeric_character_reference`.
    private mutating func handleCharref(_ name: String) {
        let scalars = Array(name.unicodeScalars)
        let hex = scalars.first == "x" || scalars.first == "X"
        let n = codePointNumber(scalars.dropFirst(hex ? 1 : 0), radix: hex ? 16 : 10)
        let ch: String
        if n == 0 || n > 0x10FFFF || (0xD800...0xDFFF).contains(n) {
            ch = "\u{FFFD}"
        } else if (0x80...0x9F).contains(n), let w = windows1252[n] {
            ch = w
        } else {
            ch = String(Unicode.Scalar(n)!)
        }
        handleData(ch)
        handleData("")
    }

    /// bs4 `handle_entityref`: the HTML5 name without its `;`, else `&name`.
    private mutating func handleEntityref(_ name: String) {
        handleData(html5Entities[name + ";"] ?? html5Entities[name] ?? "&" + name)
    }

    // MARK: html.parser.HTMLParser

    private func sub(_ a: Int, _ b: Int) -> String { ns.substring(with: NSRange(location: a, length: b - a)) }
    private func starts(_ p: String, _ i: Int) -> Bool {
        let q = Array(p.utf16)
        guard i + q.count <= u.count else { return false }
        return Array(u[i..<(i + q.count)]) == q
    }
    private func find(_ c: UInt16, from i: Int) -> Int {
        var k = i
        while k < u.count { if u[k] == c { return k }; k += 1 }
        return -1
    }
    private static func isLetter(_ c: UInt16) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }
    private static func isDigit(_ c: UInt16) -> Bool { (0x30...0x39).contains(c) }
    private static func isHex(_ c: UInt16) -> Bool { isDigit(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c) }

    /// `HTMLParser.goahead(end)` with `convert_charrefs=False`; `rawStart` is where `rawdata` begins.
    private mutating func goahead(end: Bool) throws {
        var i = rawStart
        let n = u.count
        while i < n {
            var j: Int
            let interesting = cdataElem.map { PythonRegex(#"</\s*"# + NSRegularExpression.escapedPattern(for: $0) + #"\s*>"#, ignoreCase: true) }
                ?? SoupText.interestingNormal
            if let m = interesting.search(ns, from: i) {
                j = m.range.location
            } else {
                if cdataElem != nil { break }
                j = n
            }
            if i < j { handleData(sub(i, j)) }
            i = j
            if i == n { break }
            if u[i] == 0x3C {  // <
                var k: Int
                if i + 1 < n, SoupText.isLetter(u[i + 1]) {
                    k = parseStarttag(i)
                } else if starts("</", i) {
                    k = parseEndtag(i)
                } else if starts("<!--", i) {
                    k = parseComment(i)
                } else if starts("<?", i) {
                    k = parsePI(i)
                } else if starts("<!", i) {
                    k = try parseHTMLDeclaration(i)
                } else if i + 1 < n {
                    handleData("<")
                    k = i + 1
                } else {
                    break
                }
                if k < 0 {
                    if !end { break }
                    k = find(0x3E, from: i + 1)
                    if k < 0 {
                        k = find(0x3C, from: i + 1)
                        if k < 0 { k = i + 1 }
                    } else {
                        k += 1
                    }
                    handleData(sub(i, k))
                }
                i = k
            } else if starts("&#", i) {
                if let (nameEnd, termEnd) = charref(i) {
                    handleCharref(sub(i + 2, nameEnd))
                    i = u[termEnd - 1] == 0x3B ? termEnd : termEnd - 1
                    continue
                }
                if find(0x3B, from: i) >= 0 {
                    handleData("&#")
                    i += 2
                }
                break
            } else if u[i] == 0x26 {  // &
                if let (nameEnd, termEnd) = entityref(i) {
                    handleEntityref(sub(i + 1, nameEnd))
                    i = u[termEnd - 1] == 0x3B ? termEnd : termEnd - 1
                    continue
                }
                if i + 1 < n, SoupText.isLetter(u[i + 1]) || u[i + 1] == 0x23 {  // incomplete: &[a-zA-Z#]
                    if end, n - i == 2 { i += 1 }
                    break
                } else if i + 1 < n {
                    handleData("&")
                    i += 1
                } else {
                    break
                }
            }
        }
        if end, i < n, cdataElem == nil {
            handleData(sub(i, n))
            i = n
        }
        rawStart = i
    }

    /// `charref = &#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]`: (end of the name, end of the match).
    private func charref(_ i: Int) -> (Int, Int)? {
        let n = u.count
        var k = i + 2
        while k < n, SoupText.isDigit(u[k]) { k += 1 }
        if k > i + 2, k < n, !SoupText.isHex(u[k]) { return (k, k + 1) }
        guard i + 2 < n, u[i + 2] == 0x78 || u[i + 2] == 0x58 else { return nil }
        k = i + 3
        while k < n, SoupText.isHex(u[k]) { k += 1 }
        if k > i + 3, k < n { return (k, k + 1) }  // the next character is not a hex digit
        return nil
    }

    /// `entityref = &([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]` with Python's backtracking: (end of the
    /// name, end of the match).
    private func entityref(_ i: Int) -> (Int, Int)? {
        let n = u.count
        guard i + 1 < n, SoupText.isLetter(u[i + 1]) else { return nil }
        func inName(_ c: UInt16) -> Bool { SoupText.isLetter(c) || SoupText.isDigit(c) || c == 0x2D || c == 0x2E }
        var k = i + 2
        while k < n, inName(u[k]) { k += 1 }
        if k < n { return (k, k + 1) }
        // At the end: give back characters until a `-` or `.` can be the terminator.
        var t = k - 1
        while t > i + 1 {
            if u[t] == 0x2D || u[t] == 0x2E { return (t, t + 1) }
            t -= 1
        }
        return nil
    }

    private mutating func parseStarttag(_ i: Int) -> Int {
        let endpos = checkForWholeStartTag(i)
        if endpos < 0 { return endpos }
        guard let m = SoupText.tagfind.match(ns, at: i + 1) else { return endpos }
        var k = m.range.location + m.range.length
        let tag = pythonLower(ns.substring(with: m.range(at: 1)))
        while k < endpos {
            guard let a = SoupText.attrfind.match(ns, at: k) else { break }
            k = a.range.location + a.range.length
        }
        let end = pythonStrip(sub(k, endpos))
        if end != ">" && end != "/>" {
            handleData(sub(i, endpos))
            return endpos
        }
        if end.hasSuffix("/>") {
            handleStartTag(tag, selfClosing: true)
        } else {
            handleStartTag(tag, selfClosing: false)
            if tag == "script" || tag == "style" { cdataElem = tag }
        }
        return endpos
    }

    private func checkForWholeStartTag(_ i: Int) -> Int {
        guard let m = SoupText.locateStarttagEnd.match(ns, at: i) else { return i + 1 }
        let j = m.range.location + m.range.length
        guard j < u.count else { return -1 }
        let next = u[j]
        if next == 0x3E { return j + 1 }
        if next == 0x2F { return starts("/>", j) ? j + 2 : -1 }
        if SoupText.isLetter(next) || next == 0x3D || next == 0x2F { return -1 }
        return j > i ? j : i + 1
    }

    private mutating func parseEndtag(_ i: Int) -> Int {
        let gt = find(0x3E, from: i + 1)
        if gt < 0 { return -1 }
        var gtpos = gt + 1
        guard let m = SoupText.endtagfind.match(ns, at: i) else {
            if cdataElem != nil {
                handleData(sub(i, gtpos))
                return gtpos
            }
            guard let name = SoupText.tagfind.match(ns, at: i + 2) else {
                return starts("</>", i) ? i + 3 : parseBogusComment(i)
            }
            let tagname = pythonLower(ns.substring(with: name.range(at: 1)))
            gtpos = find(0x3E, from: name.range.location + name.range.length)
            handleEndTag(tagname)
            return gtpos + 1
        }
        let elem = pythonLower(ns.substring(with: m.range(at: 1)))
        if let cdata = cdataElem, elem != cdata {
            handleData(sub(i, gtpos))
            return gtpos
        }
        handleEndTag(elem)
        cdataElem = nil
        return gtpos
    }

    private mutating func parseComment(_ i: Int) -> Int {
        guard let m = SoupText.commentclose.search(ns, from: i + 4) else { return -1 }
        special(sub(i + 4, m.range.location), .excluded)
        return m.range.location + m.range.length
    }

    private mutating func parsePI(_ i: Int) -> Int {
        let j = find(0x3E, from: i + 2)
        if j < 0 { return -1 }
        special(sub(i + 2, j), .excluded)
        return j + 1
    }

    private mutating func parseBogusComment(_ i: Int) -> Int {
        let pos = find(0x3E, from: i + 2)
        if pos < 0 { return -1 }
        special(sub(i + 2, pos), .excluded)
        return pos + 1
    }

    private mutating func parseHTMLDeclaration(_ i: Int) throws -> Int {
        if starts("<!--", i) { return parseComment(i) }
        if starts("<![", i) { return try parseMarkedSection(i) }
        if pythonLower(sub(i, min(i + 9, u.count))) == "<!doctype" {
            let gt = find(0x3E, from: i + 9)
            if gt < 0 { return -1 }
            special(sub(i + 2, gt), .excluded)
            return gt + 1
        }
        return parseBogusComment(i)
    }

    private mutating func parseMarkedSection(_ i: Int) throws -> Int {
        let n = u.count
        if i + 3 == n { return -1 }
        guard let m = SoupText.declname.match(ns, at: i + 3) else { throw Rejected() }
        if m.range.location + m.range.length == n { return -1 }
        let name = pythonLower(pythonStrip(ns.substring(with: m.range)))
        let close: PythonRegex
        if ["temp", "cdata", "ignore", "include", "rcdata"].contains(name) {
            close = SoupText.markedSectionClose
        } else if ["if", "else", "endif"].contains(name) {
            close = SoupText.msMarkedSectionClose
        } else {
            throw Rejected()
        }
        guard let end = close.search(ns, from: i + 3) else { return -1 }
        let data = sub(i + 3, end.range.location)
        if data.uppercased().hasPrefix("CDATA[") {  // data.upper().startswith("CDATA[")
            special(String(data.unicodeScalars.dropFirst(6)), .cdata)
        } else {
            special(data, .excluded)
        }
        return end.range.location + end.range.length
    }
}

/// Windows-1252 bytes 0x80…0x9F that it defines (bs4's `WINDOWS_1252_TO_UTF8`, ftfy's sloppy codec).
let windows1252: [UInt32: String] = [
    0x80: "\u{20AC}", 0x82: "\u{201A}", 0x83: "\u{0192}", 0x84: "\u{201E}", 0x85: "\u{2026}", 0x86: "\u{2020}",
    0x87: "\u{2021}", 0x88: "\u{02C6}", 0x89: "\u{2030}", 0x8A: "\u{0160}", 0x8B: "\u{2039}", 0x8C: "\u{0152}",
    0x8E: "\u{017D}", 0x91: "\u{2018}", 0x92: "\u{2019}", 0x93: "\u{201C}", 0x94: "\u{201D}", 0x95: "\u{2022}",
    0x96: "\u{2013}", 0x97: "\u{2014}", 0x98: "\u{02DC}", 0x99: "\u{2122}", 0x9A: "\u{0161}", 0x9B: "\u{203A}",
    0x9C: "\u{0153}", 0x9E: "\u{017E}", 0x9F: "\u{0178}",
]
