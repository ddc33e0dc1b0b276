/// SentencePiece text normalisation (S: `normalizer.cc::Normalizer::Normalize`, `NormalizePrefix`,
/// `DecodePrecompiledCharsMap`; darts-clone `DoubleArrayImpl::commonPrefixSearch`).
///
/// The precompiled charsmap blob is `uint32 LE trie_size | darts-clone double array (trie_size
/// bytes of uint32 units) | NUL-separated replacement strings`. At each position the longest key of
/// the trie that prefixes the remaining bytes is replaced by its string; without a match one UTF-8
/// character is copied (an invalid byte becomes U+FFFD and consumes one byte). Then whitespace is
/// handled: leading spaces dropped, a dummy "▁" prefix added, runs of spaces collapsed, every space
/// escaped as "▁", trailing "▁"s stripped.
public struct SentencePieceNormalizer: Sendable {
    /// darts-clone units.
    private let units: [UInt32]
    /// Replacement strings, NUL-separated; trie values are byte offsets into this.
    private let replacements: [UInt8]
    private let spec: SentencePieceModel.NormalizerSpec
    private let treatWhitespaceAsSuffix: Bool
    /// User-defined pieces pass through unnormalised (S: `PrefixMatcher`), longest match first.
    private let userDefined: SentencePieceTrie

    static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581 "▁"
    static let replacementChar: [UInt8] = [0xEF, 0xBF, 0xBD]  // U+FFFD

    public init(spec: SentencePieceModel.NormalizerSpec, treatWhitespaceAsSuffix: Bool = false,
                userDefinedSymbols: [String] = []) throws(SentencePieceError) {
        self.spec = spec
        self.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix
        self.userDefined = SentencePieceTrie(keys: userDefinedSymbols.enumerated().map { (Array($1.utf8), Int32($0)) })
        let blob = spec.precompiledCharsmap
        guard !blob.isEmpty else {
            units = []
            replacements = []
            return
        }
        guard blob.count > 4 else { throw .badCharsmap("blob of \(blob.count) bytes is too short") }
        let trieSize = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard trieSize <= blob.count - 4 else {
            throw .badCharsmap("trie size \(trieSize) exceeds the blob (\(blob.count - 4) bytes)")
        }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for i in units.indices {
            let o = 4 + 4 * i
            units[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        self.units = units
        self.replacements = Array(blob[(4 + trieSize)...])
    }

    /// Longest charsmap key prefixing `input[start...]`: (replacement bytes, key length), or nil.
    /// Out-of-range units or string offsets (a corrupt blob) end the search instead of trapping.
    func charsmapMatch(_ input: [UInt8], from start: Int) -> (replacement: ArraySlice<UInt8>, length: Int)? {
        guard !units.isEmpty else { return nil }
        var best: (value: Int, length: Int)?
        var id = Int(Self.offset(units[0]))
        var i = start
        while i < input.count {
            let c = input[i]
            id ^= Int(c)
            guard id < units.count else { break }
            let unit = units[id]
            guard Self.label(unit) == UInt32(c) else { break }
            id ^= Int(Self.offset(unit))
            guard id < units.count else { break }
            if Self.hasLeaf(unit) {
                best = (Int(units[id] & 0x7fff_ffff), i - start + 1)  // longer matches replace shorter ones
            }
            i += 1
        }
        guard let best, best.value < replacements.count else { return nil }
        var end = best.value
        while end < replacements.count && replacements[end] != 0 { end += 1 }
        return (replacements[best.value..<end], best.length)
    }

    private static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    private static func label(_ u: UInt32) -> UInt32 { u & 0x8000_00ff }
    private static func offset(_ u: UInt32) -> UInt32 { (u >> 10) << ((u & (1 << 9)) >> 6) }

    /// One normalised unit at `start`: (output bytes, consumed input bytes). S: `NormalizePrefix`.
    func normalizePrefix(_ input: [UInt8], from start: Int) -> (output: ArraySlice<UInt8>, consumed: Int) {
        if let (_, length) = userDefined.longestPrefix(input, from: start) {
            return (input[start..<(start + length)], length)
        }
        if let (replacement, length) = charsmapMatch(input, from: start) {
            return (replacement, length)
        }
        if let length = validUTF8Length(input, at: start) {
            return (input[start..<(start + length)], length)
        }
        return (Self.replacementChar[...], 1)
    }

    /// Normalises UTF-8 bytes (S: `Normalizer::Normalize`); the result is what the unigram model segments.
    ///
    /// - Parameter unicodeWhitespaceAsSpace: also treat every normalised code point with the Unicode
    ///   White_Space property as a space. This is what the `tokenizers` pipeline that transformers 5
    ///   builds for T5 does (`Precompiled` normaliser, then `WhitespaceSplit` and `Metaspace`); with
    ///   nmt_nfkc the only such code point the charsmap leaves alone is U+0085. Off = sentencepiece.
    public func normalize(_ input: [UInt8], unicodeWhitespaceAsSpace: Bool = false) -> [UInt8] {
        var pos = 0
        if spec.removeExtraWhitespaces {  // skip leading spaces (after normalisation)
            while pos < input.count {
                let (out, consumed) = normalizePrefix(input, from: pos)
                let piece = unicodeWhitespaceAsSpace ? Self.whitespaceToSpace(out) : out
                guard piece.elementsEqual([0x20]) else { break }
                pos += consumed
            }
        }
        guard pos < input.count else { return [] }

        let space: [UInt8] = spec.escapeWhitespaces ? Self.spaceSymbol : [0x20]
        var normalized: [UInt8] = []
        normalized.reserveCapacity(input.count * 3)
        if !treatWhitespaceAsSuffix && spec.addDummyPrefix { normalized += space }

        var isPrevSpace = spec.removeExtraWhitespaces
        while pos < input.count {
            let (out, consumed) = normalizePrefix(input, from: pos)
            var piece = unicodeWhitespaceAsSpace ? Self.whitespaceToSpace(out) : out
            while isPrevSpace, piece.first == 0x20 { piece = piece.dropFirst() }
            if !piece.isEmpty {
                for b in piece {
                    if spec.escapeWhitespaces && b == 0x20 { normalized += Self.spaceSymbol } else { normalized.append(b) }
                }
                isPrevSpace = piece.last == 0x20
            }
            pos += consumed
            if !spec.removeExtraWhitespaces { isPrevSpace = false }
        }

        if spec.removeExtraWhitespaces {
            while normalized.count >= space.count, normalized.suffix(space.count).elementsEqual(space) {
                normalized.removeLast(space.count)
            }
        }
        if treatWhitespaceAsSuffix && spec.addDummyPrefix { normalized += space }
        return normalized
    }
}

extension SentencePieceNormalizer {
    /// `piece` with every White_Space code point replaced by " " (ASCII without tab…CR: unchanged).
    static func whitespaceToSpace(_ piece: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard piece.contains(where: { $0 >= 0x80 || (0x09...0x0D).contains($0) }) else { return piece }
        var out: [UInt8] = []
        for scalar in String(decoding: piece, as: UTF8.self).unicodeScalars {
            if scalar.properties.isWhitespace { out.append(0x20) } else { out += Array(String(scalar).utf8) }
        }
        return out[...]
    }
}

/// Length of the strictly valid UTF-8 character at `i` (S: `string_util::DecodeUTF8`), nil if invalid.
/// An encoded U+FFFD is valid (3 bytes).
func validUTF8Length(_ s: [UInt8], at i: Int) -> Int? {
    let n = s.count - i
    guard n > 0 else { return nil }
    let b0 = UInt32(s[i])
    if b0 < 0x80 { return 1 }
    func trail(_ k: Int) -> UInt32? {
        let b = s[i + k]
        return b & 0xC0 == 0x80 ? UInt32(b & 0x3F) : nil
    }
    func valid(_ cp: UInt32) -> Bool { cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF) }
    if n >= 2, b0 & 0xE0 == 0xC0, let t1 = trail(1) {
        let cp = (b0 & 0x1F) << 6 | t1
        return cp >= 0x80 && valid(cp) ? 2 : nil
    }
    if n >= 3, b0 & 0xF0 == 0xE0, let t1 = trail(1), let t2 = trail(2) {
        let cp = (b0 & 0x0F) << 12 | t1 << 6 | t2
        return cp >= 0x800 && valid(cp) ? 3 : nil
    }
    if n >= 4, b0 & 0xF8 == 0xF0, let t1 = trail(1), let t2 = trail(2), let t3 = trail(3) {
        let cp = (b0 & 0x07) << 18 | t1 << 12 | t2 << 6 | t3
        return cp >= 0x10000 && valid(cp) ? 4 : nil
    }
    return nil
}
