import Foundation
import XCTest
@testable import PixconvRuntime

/// Checks the SentencePiece / T5 tokenizer against fixtures/text/tokens.json, written by
/// scripts/make_text_reference.py from transformers' T5Tokenizer (as PixArtAlphaPipeline calls it)
/// and sentencepiece's SentencePieceProcessor on the tiny pipeline's spiece.model.
final class TokenizerTests: XCTestCase {
    private struct Reference: Decodable {
        struct Case: Decodable {
            var prompt: String
            var preprocessed: String
            var ids: [Int32]
            var mask: [Int32]
            var sp_ids: [Int32]
            var sp_normalized: String
            var raw_ids: [Int32]
            var raw_mask: [Int32]
            var ids_16: [Int32]
            var mask_16: [Int32]
        }
        struct Invalid: Decodable {
            var hex: String
            var sp_ids: [Int32]
            var sp_normalized_hex: String
        }
        var max_length: Int
        var hf_sp_disagreements: [String]
        var python_lower_map: [[LowerField]]
        var python_isspace: [UInt32]
        var pieces: [[PieceField]]
        var invalid_utf8: [Invalid]
        struct Sentinels: Decodable {
            struct Case: Decodable { var text: String; var ids: [Int32]; var mask: [Int32] }
            var extra_ids: Int
            var vocab_size: Int
            var cases: [Case]
        }
        var sentinels: Sentinels
        struct Variant: Decodable {
            struct Case: Decodable { var text: String; var sp_ids: [Int32]; var sp_normalized: String }
            var name: String
            var suffix_hex: String
            var cases: [Case]
        }
        var variants: [Variant]
        var cases: [Case]
    }

    private enum LowerField: Decodable {
        case scalar(UInt32), scalars([UInt32])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(UInt32.self) { self = .scalar(v) } else { self = .scalars(try c.decode([UInt32].self)) }
        }
    }

    private enum PieceField: Decodable {
        case string(String), number(Double)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) } else { self = .number(try c.decode(Double.self)) }
        }
    }

    private static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static func tokFixture(_ path: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(path))
    }

    private static let modelBytes: [UInt8] = {
        (try? [UInt8](tokFixture("fixtures/tiny-pixart-512/tokenizer/spiece.model"))) ?? []
    }()

    private func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Self.tokFixture("fixtures/text/tokens.json"))
    }

    private func tokenizer(hfWhitespaceSplit: Bool = true) throws -> T5Tokenizer {
        try T5Tokenizer(spieceModel: Self.modelBytes, hfWhitespaceSplit: hfWhitespaceSplit)
    }

    private static func hexBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    func testModelPiecesMatchSentencePiece() throws {
        let ref = try reference()
        let model = try SentencePieceModel(bytes: Self.modelBytes)
        XCTAssertEqual(model.pieces.count, ref.pieces.count)
        for (i, row) in ref.pieces.enumerated() where i < model.pieces.count {
            guard case let .string(piece) = row[0], case let .number(score) = row[1], case let .string(kind) = row[2]
            else { return XCTFail("bad piece row \(i)") }
            let p = model.pieces[i]
            XCTAssertEqual(p.piece, piece, "piece \(i)")
            XCTAssertEqual(p.score, Float(score), "score of piece \(i)")
            let expected: SentencePieceModel.PieceType = switch kind {
            case "control": .control
            case "unknown": .unknown
            case "unused": .unused
            case "byte": .byte
            default: .normal
            }
            XCTAssertEqual(p.type, expected, "type of piece \(i)")
        }
        // fixtures/README.md (tiny-pixart-*/tokenizer): unigram, pad 0, eos 1, unk 2, no bos, nmt_nfkc
        XCTAssertEqual(model.modelType, 1)
        XCTAssertEqual(model.trainerPadId, 0)
        XCTAssertEqual(model.trainerEosId, 1)
        XCTAssertEqual(model.trainerUnkId, 2)
        XCTAssertEqual(model.trainerBosId, -1)
        XCTAssertEqual(model.normalizer.name, "nmt_nfkc")
        XCTAssertFalse(model.normalizer.precompiledCharsmap.isEmpty)
        XCTAssertTrue(model.normalizer.addDummyPrefix)
        let tok = try tokenizer()
        XCTAssertEqual(tok.padId, 0)
        XCTAssertEqual(tok.eosId, 1)
        XCTAssertEqual(tok.sentencePiece.unkId, 2)
    }

    func testPreprocessMatchesPython() throws {
        for c in try reference().cases {
            XCTAssertEqual(pixArtPreprocess(c.prompt), c.preprocessed, "prompt \(c.prompt.debugDescription)")
        }
        // CPython's final-sigma rule and full case mappings
        XCTAssertEqual(pythonLower("ΟΔΟΣ ΑΣ. Σ xΣ'"), "οδος ας. σ xς'")
        XCTAssertEqual(pythonLower("İ"), "i\u{307}")
        XCTAssertEqual(pythonStrip("\u{1C}\u{85} a \u{200B}"), "a \u{200B}")
    }

    /// Every code point: `pythonLower` and `isPythonSpace` against CPython's tables.
    func testPythonLowerAndSpaceForAllCodePoints() throws {
        let ref = try reference()
        var lower: [UInt32: [UInt32]] = [:]
        for row in ref.python_lower_map {
            guard row.count == 2, case let .scalar(cp) = row[0], case let .scalars(out) = row[1] else {
                return XCTFail("bad lower row")
            }
            lower[cp] = out
        }
        XCTAssertGreaterThan(lower.count, 1000)
        let spaces = Set(ref.python_isspace)
        var mismatches: [String] = []
        for cp in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(cp) else { continue }
            let s = String(scalar)
            let want = lower[cp] ?? [cp]
            let got = pythonLower(s).unicodeScalars.map(\.value)
            if got != want { mismatches.append(String(cp, radix: 16)) }
            XCTAssertEqual(isPythonSpace(scalar), spaces.contains(cp), "isspace U+\(String(cp, radix: 16))")
        }
        XCTAssertEqual(mismatches, [], "pythonLower differs from Python \(mismatches.count) times")
    }

    func testNormalizerMatchesSentencePiece() throws {
        let sp = try tokenizer().sentencePiece
        for c in try reference().cases {
            let got = sp.normalizer.normalize(Array(c.preprocessed.utf8))
            XCTAssertEqual(String(decoding: got, as: UTF8.self), c.sp_normalized, "prompt \(c.prompt.debugDescription)")
        }
    }

    func testIdsMatchTransformersForWholeCorpus() throws {
        let ref = try reference()
        let tok = try tokenizer()
        XCTAssertGreaterThanOrEqual(ref.cases.count, 50)
        for c in ref.cases {
            let (ids, mask) = tok.encode(c.preprocessed, maxLength: ref.max_length)
            XCTAssertEqual(ids, c.ids, "prompt \(c.prompt.debugDescription)")
            XCTAssertEqual(mask, c.mask, "mask of \(c.prompt.debugDescription)")
            let raw = tok.encode(c.prompt)
            XCTAssertEqual(raw.ids, c.raw_ids, "raw prompt \(c.prompt.debugDescription)")
            XCTAssertEqual(raw.mask, c.raw_mask, "raw mask of \(c.prompt.debugDescription)")
            let short = tok.encode(c.preprocessed, maxLength: 16)
            XCTAssertEqual(short.ids, c.ids_16, "max_length 16: \(c.prompt.debugDescription)")
            XCTAssertEqual(short.mask, c.mask_16, "max_length 16 mask: \(c.prompt.debugDescription)")
        }
        // the corpus really exercises truncation and the empty prompt
        XCTAssertTrue(ref.cases.contains { $0.mask.allSatisfy { $0 == 1 } })
        XCTAssertTrue(ref.cases.contains { $0.ids.first == 1 && $0.mask.dropFirst().allSatisfy { $0 == 0 } })
    }

    func testPlainSentencePieceMatchesProcessor() throws {
        let ref = try reference()
        let sp = try tokenizer().sentencePiece
        for c in ref.cases where !c.preprocessed.contains("<") {
            var ids = Array(sp.encode(c.preprocessed).prefix(ref.max_length - 1)) + [1]
            ids += [Int32](repeating: 0, count: ref.max_length - ids.count)
            XCTAssertEqual(ids, c.sp_ids, "prompt \(c.prompt.debugDescription)")
        }
        // where transformers and sentencepiece disagree on whitespace, the sentencepiece mode follows sentencepiece
        let spMode = try tokenizer(hfWhitespaceSplit: false)
        for c in ref.cases where ref.hf_sp_disagreements.contains(c.prompt) && !c.preprocessed.contains("<") {
            XCTAssertNotEqual(c.ids, c.sp_ids)
            XCTAssertEqual(spMode.encode(c.preprocessed).ids, c.sp_ids, "prompt \(c.prompt.debugDescription)")
        }
    }

    /// Normaliser flags and whitespace-as-suffix, flipped by appending proto fields to the model.
    func testModelVariantsMatchSentencePiece() throws {
        let ref = try reference()
        XCTAssertEqual(ref.variants.count, 6)
        for v in ref.variants {
            let sp = try SentencePieceUnigram(model: SentencePieceModel(bytes: Self.modelBytes + Self.hexBytes(v.suffix_hex)))
            for c in v.cases {
                let normalized = sp.normalizer.normalize(Array(c.text.utf8))
                XCTAssertEqual(String(decoding: normalized, as: UTF8.self), c.sp_normalized, "\(v.name): \(c.text.debugDescription)")
                XCTAssertEqual(sp.encode(c.text), c.sp_ids, "\(v.name): \(c.text.debugDescription)")
            }
        }
    }

    func testSentinelTokensWithExtraIds() throws {
        let ref = try reference().sentinels
        let tok = try T5Tokenizer(spieceModel: Self.modelBytes, extraIds: ref.extra_ids)
        XCTAssertEqual(tok.vocabularySize, ref.vocab_size)
        for c in ref.cases {
            let (ids, mask) = tok.encode(c.text)
            XCTAssertEqual(ids, c.ids, c.text)
            XCTAssertEqual(mask, c.mask, c.text)
        }
    }

    func testInvalidUTF8BecomesReplacementCharacter() throws {
        let sp = try tokenizer().sentencePiece
        for c in try reference().invalid_utf8 {
            let bytes = Self.hexBytes(c.hex)
            XCTAssertEqual(sp.normalizer.normalize(bytes), Self.hexBytes(c.sp_normalized_hex), c.hex)
            XCTAssertEqual(sp.encode(bytes: bytes), c.sp_ids, c.hex)
        }
    }

    // MARK: hostile model bytes

    /// A length-delimited proto field.
    private static func tokField(_ number: UInt8, _ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count < 128)
        return [number << 3 | 2, UInt8(payload.count)] + payload
    }

    private static func tokPiece(_ s: String, type: UInt8 = 1) -> [UInt8] {
        tokField(1, tokField(1, Array(s.utf8)) + [0x15, 0, 0, 0x80, 0xBF] + [0x18, type])  // score -1
    }

    func testMalformedModelsThrow() throws {
        func error(_ bytes: [UInt8]) -> SentencePieceError? {
            do {
                _ = try SentencePieceUnigram(model: SentencePieceModel(bytes: bytes))
                return nil
            } catch { return error }
        }
        XCTAssertEqual(error([]), .noPieces)
        XCTAssertEqual(error([0x0A, 0x05, 0x0A]), .truncated(offset: 0, what: "length-delimited field 1"))
        XCTAssertEqual(error([0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]), .badVarint(offset: 1))
        XCTAssertEqual(error([0x08, 0x80]), .truncated(offset: 1, what: "varint"))
        XCTAssertEqual(error([0x0F]), .badWireType(offset: 0, field: 1, wireType: 7))
        XCTAssertEqual(error([0x0C]), .badWireType(offset: 0, field: 1, wireType: 4))
        XCTAssertEqual(error([0x1B, 0x08, 0x01]), .truncated(offset: 0, what: "group 3"))
        XCTAssertEqual(error([0x1B, 0x24]), .badWireType(offset: 1, field: 4, wireType: 4))
        XCTAssertEqual(error(Self.tokPiece("<unk>", type: 2) + Self.tokField(1, Self.tokField(1, [0xC3]))),
                       .invalidUTF8(what: "piece 1"))
        XCTAssertEqual(error(Self.tokPiece("a")), .noUnknownPiece)
        XCTAssertEqual(error(Self.tokPiece("<unk>", type: 2) + Self.tokPiece("a") + Self.tokPiece("a")), .duplicatePiece("a"))
        XCTAssertEqual(error(Self.tokPiece("<unk>", type: 2) + Self.tokPiece("x", type: 2)), .multipleUnknownPieces(index: 1))
        XCTAssertEqual(error(Self.tokPiece("<unk>", type: 2) + Self.tokField(1, [])), .emptyPiece(index: 1))
        XCTAssertEqual(error(Self.tokPiece("<unk>", type: 2) + Self.tokField(2, [0x18, 2])), .unsupportedModelType(2))
        // a charsmap whose trie is larger than the blob; a later normalizer_spec merges into the first
        XCTAssertEqual(error(Self.modelBytes + Self.tokField(3, Self.tokField(2, [0xFF, 0xFF, 0, 0, 1, 2]))),
                       .badCharsmap("trie size 65535 exceeds the blob (2 bytes)"))
        XCTAssertEqual(error(Self.modelBytes + Self.tokField(3, Self.tokField(2, [1, 0, 0, 0]))),
                       .badCharsmap("blob of 4 bytes is too short"))
        // unknown fields and groups are skipped; a known field with another wire type is ignored
        let extra: [UInt8] = [0x1B, 0x08, 0x01, 0x2B, 0x2C, 0x1C, 0xF8, 0x01, 0x05]
            + Self.tokField(1, Self.tokField(1, Array("b".utf8)) + [0x10, 0x7F, 0x18, 0x09])
        XCTAssertNil(error(extra + Self.tokPiece("<unk>", type: 2) + Self.tokPiece("a")))
        let model = try SentencePieceModel(bytes: extra + Self.tokPiece("<unk>", type: 2) + Self.tokPiece("a"))
        XCTAssertEqual(model.pieces.count, 3)
        XCTAssertEqual(model.pieces[0], .init(piece: "b", score: 0, type: .normal))  // varint score, type 9 ignored
        XCTAssertEqual(model.pieces[2], .init(piece: "a", score: -1, type: .normal))
        XCTAssertTrue(model.normalizer.precompiledCharsmap.isEmpty)
    }

    func testTruncatedAndCorruptedModelsNeverTrap() throws {
        let bytes = Self.modelBytes
        XCTAssertFalse(bytes.isEmpty)
        var cuts = Array(stride(from: 0, to: bytes.count, by: 211)) + Array(max(0, bytes.count - 64)..<bytes.count)
        cuts.append(bytes.count - 1)
        var rejected = 0
        for cut in cuts {
            do {
                let sp = try SentencePieceUnigram(model: SentencePieceModel(bytes: Array(bytes[..<cut])))
                let ids = sp.encode("a photo of a cat, ﬁne ｆｕｌｌ 日本")
                XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < sp.model.pieces.count })
            } catch {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, cuts.count / 2)

        // flip bytes at pseudo-random positions (fixed LCG); parse either fails cleanly or encodes
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        for _ in 0..<150 {
            var corrupt = bytes
            for _ in 0..<8 { corrupt[next() % corrupt.count] ^= UInt8(truncatingIfNeeded: next() | 1) }
            if let sp = try? SentencePieceUnigram(model: SentencePieceModel(bytes: corrupt)) {
                let ids = sp.encode("An astronaut, ÀÉÎ ①, \u{85}x 😀 ｆｕｌｌ")
                XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < sp.model.pieces.count })
            }
        }
    }

    func testCorruptedCharsmapNeverTraps() throws {
        let model = try SentencePieceModel(bytes: Self.modelBytes)
        let blob = model.normalizer.precompiledCharsmap
        var state: UInt64 = 12345
        for trial in 0..<60 {
            var m = model
            var b = blob
            for _ in 0..<(trial % 7 == 0 ? 4000 : 40) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let pos = 4 + Int(state >> 33) % (b.count - 4)  // keep the trie size valid
                b[pos] = UInt8(truncatingIfNeeded: state >> 17)
            }
            m.normalizer.precompiledCharsmap = b
            let sp = try SentencePieceUnigram(model: m)
            for text in ["ＦＵＬＬ ﬁ ½ ① ÀÉ", "plain text", "日本語 😀 \u{3000}x"] {
                let ids = sp.encode(text)
                XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < m.pieces.count })
            }
        }
    }
}
