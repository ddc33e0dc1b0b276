import Foundation
import XCTest

@testable import PixconvRuntime

/// Replays fuzzing inputs through the entry point of the libFuzzer harness
/// `FuzzTesting/Sources/FuzzSpiece` (formats/fuzzing.md):
/// - every input it once crashed, hung or ran out of memory on, saved under
///   `Tests/PixconvRuntimeTests/Regressions/spiece/`, must now give a clean error or a model whose
///   encodings stay inside its vocabulary;
/// - the seed models `FuzzTesting/Corpus/spiece/` (trained by sentencepiece, FuzzTesting/make_corpus.py)
///   must load and encode as sentencepiece's `SentencePieceProcessor.encode` does.
final class RuntimeFuzzRegressionTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// (file name, bytes) of every file in `folder`, sorted; none when the folder does not exist.
    private static func fuzzFiles(_ folder: String) throws -> [(name: String, bytes: [UInt8])] {
        let url = root.appendingPathComponent(folder)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().filter { !$0.hasPrefix(".") }.map {
            ($0, [UInt8](try Data(contentsOf: url.appendingPathComponent($0))))
        }
    }

    private static let texts = ["a photo of a cat", "AB  café ｆ cat dog<x>"]

    /// `FuzzSpiece`: model, Unigram encoder, a few encodings (ids inside the vocabulary), T5 tokenizer.
    private func replaySpiece(_ bytes: [UInt8], _ name: String) throws -> [[Int32]] {
        let model = try SentencePieceModel(bytes: bytes)
        let unigram = try SentencePieceUnigram(model: model)
        let n = model.pieces.count
        var out: [[Int32]] = []
        for text in Self.texts + ["A photo of a cat, 3 «ß» \u{3000}x  "] {
            let ids = unigram.encode(text)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < n }, "\(name): id outside 0..<\(n) for '\(text)'")
            out.append(ids)
        }
        _ = unigram.encode(bytes: Array(bytes.prefix(64)))
        if let tokenizer = try? T5Tokenizer(spieceModel: bytes, extraIds: 3) {
            let (ids, mask) = tokenizer.encode("a small red car", maxLength: 16)
            XCTAssertEqual(ids.count, 16, name)
            XCTAssertEqual(mask.count, 16, name)
        }
        return out
    }

    func testSpieceRegressionsFailCleanly() throws {
        for (name, bytes) in try Self.fuzzFiles("Tests/PixconvRuntimeTests/Regressions/spiece") {
            do {
                _ = try replaySpiece(bytes, name)
            } catch {
                XCTAssertTrue(error is SentencePieceError, "\(name): unexpected error type \(type(of: error)): \(error)")
            }
        }
    }

    func testSpieceSeedsEncodeLikeSentencepiece() throws {
        // sentencepiece 0.2 `SentencePieceProcessor(model_file=...).encode(text)` for `texts`.
        let expected: [String: [[Int32]]] = [
            "bytefb.model": [[271, 259, 283, 264, 260, 264, 272, 268, 271, 270, 260],
                             [259, 68, 69, 270, 268, 198, 172, 259, 242, 192, 137, 270, 260, 287, 264, 278, 63, 280, 65]],
            "identity.model": [[15, 3, 27, 8, 4, 8, 16, 12, 15, 14, 4], [3, 2, 14, 12, 2, 3, 2, 14, 4, 31, 8, 22, 2, 24, 2]],
            "nodummy.model": [[5, 3, 26, 8, 4, 8, 16, 13, 3, 5, 15, 4], [5, 22, 3, 15, 13, 6, 2, 3, 2, 15, 4, 29, 8, 23, 2, 21, 2]],
            "rules.model": [[15, 3, 27, 8, 4, 8, 16, 12, 15, 14, 4], [15, 21, 14, 12, 5, 2, 3, 2, 14, 4, 31, 8, 22, 2, 24, 2]],
            "uds.model": [[17, 5, 29, 10, 6, 10, 18, 14, 17, 16, 6], [5, 2, 16, 14, 2, 5, 2, 16, 6, 33, 10, 24, 3]],
        ]
        let seeds = try Self.fuzzFiles("FuzzTesting/Corpus/spiece")
        XCTAssertEqual(Set(seeds.map(\.name)), Set(expected.keys))
        for (name, bytes) in seeds {
            let ids = try replaySpiece(bytes, name)
            XCTAssertEqual(Array(ids.prefix(2)), expected[name], name)
        }
    }
}
