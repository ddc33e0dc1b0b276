/// The T5 tokenizer as PixArt's pipeline calls it (T: `tokenization_t5.py` `T5Tokenizer` with
/// `legacy=True`; D: `pipeline_pixart_alpha.py::encode_prompt`):
/// `tokenizer(text, padding="max_length", max_length=120, truncation=True, add_special_tokens=True)`.
///
/// Special tokens written literally in the text (`<pad>`, `</s>`, `<unk>`, `<extra_id_N>`) are split
/// out first (leftmost, longest) and become their ids; every other segment is encoded by
/// SentencePiece on its own (dummy prefix per segment). The pieces are truncated to
/// `maxLength - 1`, `</s>` is appended and the sequence is right-padded with `<pad>`.
///
/// transformers 5 runs T5Tokenizer on the `tokenizers` library; it differs from plain sentencepiece
/// (transformers 4's slow tokenizer) in two ways this type follows by default: it splits words at
/// every Unicode White_Space code point left after normalisation (U+0085 with nmt_nfkc), and it
/// appends `</s>` even when the text already ends with a literal `</s>` (transformers 4 does not).
/// `hfWhitespaceSplit: false` gives the sentencepiece segmentation.
public struct T5Tokenizer: Sendable {
    public let sentencePiece: SentencePieceUnigram
    public let padId: Int32
    public let eosId: Int32
    /// Number of `<extra_id_N>` sentinels appended after the SentencePiece vocabulary
    /// (HF `extra_ids`; 100 for the real T5 tokenizer, 0 for PixArt's tiny test pipelines).
    public let extraIds: Int
    /// Split at Unicode whitespace as transformers 5 / `tokenizers` does (see the type's comment).
    public let hfWhitespaceSplit: Bool
    /// Special token bytes → id, longest first.
    private let specials: [([UInt8], Int32)]
    /// First bytes of the special tokens, to skip the search elsewhere.
    private let specialFirstBytes: Set<UInt8>

    /// - Parameters:
    ///   - spieceModel: the bytes of `spiece.model`.
    ///   - extraIds: HF `extra_ids` (sentinel ids `pieces + extraIds − 1 − N`).
    ///   - hfWhitespaceSplit: follow transformers 5 at Unicode whitespace (default) or sentencepiece.
    public init(spieceModel: [UInt8], extraIds: Int = 0, hfWhitespaceSplit: Bool = true) throws {
        let model = try SentencePieceModel(bytes: spieceModel)
        let sp = try SentencePieceUnigram(model: model)
        guard extraIds >= 0, extraIds <= 10_000 else {
            throw RuntimeError.invalidInput("tokenizer: extra_ids \(extraIds) out of range")
        }
        func id(_ piece: String) throws -> Int32 {
            guard let i = model.pieces.firstIndex(where: { $0.piece == piece }) else {
                throw RuntimeError.invalidInput("tokenizer: spiece model has no \(piece) piece")
            }
            return Int32(i)
        }
        self.sentencePiece = sp
        self.padId = try id("<pad>")
        self.eosId = try id("</s>")
        self.extraIds = extraIds
        self.hfWhitespaceSplit = hfWhitespaceSplit
        var specials: [([UInt8], Int32)] = [
            (Array("<pad>".utf8), padId), (Array("</s>".utf8), eosId),
            (Array(model.pieces[Int(sp.unkId)].piece.utf8), sp.unkId),
        ]
        for n in 0..<extraIds {
            specials.append((Array("<extra_id_\(n)>".utf8), Int32(model.pieces.count + extraIds - 1 - n)))
        }
        self.specials = specials.sorted { $0.0.count > $1.0.count }
        self.specialFirstBytes = Set(specials.compactMap { $0.0.first })
    }

    /// Vocabulary size as HF reports it (SentencePiece pieces + sentinels).
    public var vocabularySize: Int { sentencePiece.model.pieces.count + extraIds }

    /// Piece ids of `text` without `</s>`, padding or truncation.
    public func tokenize(_ text: String) -> [Int32] {
        let bytes = Array(text.utf8)
        var ids: [Int32] = []
        var segmentStart = 0
        var i = 0
        while i < bytes.count {
            if specialFirstBytes.contains(bytes[i]), let (length, id) = special(at: i, in: bytes) {
                ids += sentencePiece.encode(
                    bytes: Array(bytes[segmentStart..<i]), unicodeWhitespaceAsSpace: hfWhitespaceSplit)
                ids.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        ids += sentencePiece.encode(bytes: Array(bytes[segmentStart...]), unicodeWhitespaceAsSpace: hfWhitespaceSplit)
        return ids
    }

    private func special(at i: Int, in bytes: [UInt8]) -> (Int, Int32)? {
        for (key, id) in specials where key.count <= bytes.count - i {
            if bytes[i..<(i + key.count)].elementsEqual(key) { return (key.count, id) }
        }
        return nil
    }

    /// ids: pieces truncated to `maxLength − 1`, then `</s>`, then `<pad>` up to `maxLength`;
    /// mask: 1 on pieces and `</s>`, 0 on padding. `maxLength` below 1 is treated as 1.
    public func encode(_ text: String, maxLength: Int = 120) -> (ids: [Int32], mask: [Int32]) {
        let length = max(maxLength, 1)
        var ids = Array(tokenize(text).prefix(length - 1))
        ids.append(eosId)
        let used = ids.count
        ids += [Int32](repeating: padId, count: length - used)
        let mask = [Int32](repeating: 1, count: used) + [Int32](repeating: 0, count: length - used)
        return (ids, mask)
    }
}
