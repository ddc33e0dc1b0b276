/// SentencePiece unigram encoder: normalisation + Viterbi segmentation + unknown merging
/// (S: `unigram_model.cc::Model::EncodeOptimized`, `model_interface.cc::InitializePieces`,
/// `sentencepiece_processor.cc::Encode` / `PopulateSentencePieceText`).
public struct SentencePieceUnigram: Sendable {
    public let model: SentencePieceModel
    public let normalizer: SentencePieceNormalizer
    /// Id of the piece of type UNKNOWN.
    public let unkId: Int32
    /// Matchable pieces (NORMAL, USER_DEFINED, UNUSED) → id.
    private let trie: SentencePieceTrie
    /// Reserved pieces (CONTROL, UNKNOWN, BYTE) by string, for special-token lookup.
    public let reservedIds: [String: Int32]
    private let minScore: Float
    private let maxScore: Float
    /// Byte-fallback piece ids `<0x00>`…`<0xFF>` (when the model has them).
    private let byteIds: [Int32]?

    /// S: `unigram_model.cc` `kUnkPenalty`.
    static let unknownPenalty: Float = 10

    public init(model: SentencePieceModel) throws(SentencePieceError) {
        guard model.modelType == 1 else { throw .unsupportedModelType(Int(model.modelType)) }
        self.model = model
        var normal: [([UInt8], Int32)] = []
        var reserved: [String: Int32] = [:]
        var seenNormal = Set<String>()
        var unk: Int32 = -1
        var userDefined: [String] = []
        var bytes = [Int32](repeating: -1, count: 256)
        // FLT_MAX / FLT_MIN initial values as in `Model::Model` (max starts at the smallest
        // positive normal float, not at -FLT_MAX).
        var minScore = Float.greatestFiniteMagnitude
        var maxScore = Float.leastNormalMagnitude
        for (i, p) in model.pieces.enumerated() {
            guard !p.piece.isEmpty else { throw .emptyPiece(index: i) }
            let id = Int32(i)
            switch p.type {
            case .normal, .userDefined, .unused:
                guard seenNormal.insert(p.piece).inserted else { throw .duplicatePiece(p.piece) }
                normal.append((Array(p.piece.utf8), id))
            case .unknown, .control, .byte:
                guard reserved[p.piece] == nil else { throw .duplicatePiece(p.piece) }
                reserved[p.piece] = id
            }
            if p.type == .userDefined { userDefined.append(p.piece) }
            if p.type == .unknown {
                guard unk < 0 else { throw .multipleUnknownPieces(index: i) }
                unk = id
            }
            if p.type == .byte, let b = Self.byteValue(p.piece) { bytes[Int(b)] = id }
            if p.type == .normal {
                minScore = min(minScore, p.score)
                maxScore = max(maxScore, p.score)
            }
        }
        guard unk >= 0 else { throw .noUnknownPiece }
        self.unkId = unk
        self.reservedIds = reserved
        self.trie = SentencePieceTrie(keys: normal)
        self.minScore = minScore
        self.maxScore = maxScore
        self.byteIds = model.byteFallback && !bytes.contains(-1) ? bytes : nil
        self.normalizer = try SentencePieceNormalizer(
            spec: model.normalizer, treatWhitespaceAsSuffix: model.treatWhitespaceAsSuffix,
            userDefinedSymbols: userDefined)
    }

    /// `<0xAB>` → 0xAB.
    private static func byteValue(_ piece: String) -> UInt8? {
        let u = Array(piece.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    /// Ids of `text` as `SentencePieceProcessor.encode(text)` gives them (no BOS/EOS).
    public func encode(_ text: String) -> [Int32] {
        encode(bytes: Array(text.utf8))
    }

    /// Ids of UTF-8 `bytes` (invalid sequences normalise to U+FFFD). `unicodeWhitespaceAsSpace`:
    /// see `SentencePieceNormalizer.normalize`.
    public func encode(bytes: [UInt8], unicodeWhitespaceAsSpace: Bool = false) -> [Int32] {
        let normalized = normalizer.normalize(bytes, unicodeWhitespaceAsSpace: unicodeWhitespaceAsSpace)
        var ids: [Int32] = []
        var previousUnknown = false
        for (id, range) in viterbi(normalized) {
            let isUnknown = id == unkId
            if isUnknown, let byteIds {
                for b in normalized[range] { ids.append(byteIds[Int(b)]) }
                previousUnknown = false
                continue
            }
            if !(isUnknown && previousUnknown) { ids.append(id) }  // a run of unknowns is one <unk>
            previousUnknown = isUnknown
        }
        return ids
    }

    /// Best segmentation of a normalised string: (id, byte range) per piece. S: `EncodeOptimized`.
    ///
    /// Scores follow the C++ types: a vocabulary score is widened to double (the ternary with the
    /// user-defined bonus is double), added to the float path score and compared in double, then
    /// stored as float; the unknown edge is float + float.
    func viterbi(_ s: [UInt8]) -> [(id: Int32, range: Range<Int>)] {
        let size = s.count
        struct Node { var id: Int32 = -1; var score: Float = 0; var startsAt = -1 }
        var best = [Node](repeating: Node(), count: size + 1)
        let unkScore = minScore - Self.unknownPenalty
        var start = 0
        while start < size {
            let here = best[start].score
            let charLength = min(Self.oneCharLength(s[start]), size - start)
            var hasSingleNode = false
            trie.forEachPrefix(s, from: start) { id, length in
                let piece = model.pieces[Int(id)]
                if piece.type == .unused { return }
                let score: Double = piece.type == .userDefined
                    ? Double(Float(length) * maxScore) - 0.1
                    : Double(piece.score)
                let candidate = score + Double(here)
                let end = start + length
                if best[end].startsAt == -1 || candidate > Double(best[end].score) {
                    best[end] = Node(id: id, score: Float(candidate), startsAt: start)
                }
                if length == charLength { hasSingleNode = true }
            }
            if !hasSingleNode {
                let end = start + charLength
                let candidate = unkScore + here
                if best[end].startsAt == -1 || candidate > best[end].score {
                    best[end] = Node(id: unkId, score: candidate, startsAt: start)
                }
            }
            start += charLength
        }
        var result: [(id: Int32, range: Range<Int>)] = []
        var end = size
        while end > 0 {
            let node = best[end]
            guard node.startsAt >= 0, node.startsAt < end else { break }  // unreachable for valid input
            result.append((node.id, node.startsAt..<end))
            end = node.startsAt
        }
        return result.reversed()
    }

    /// UTF-8 length from the lead byte alone (S: `string_util::OneCharLen`).
    static func oneCharLength(_ b: UInt8) -> Int {
        switch b >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}
