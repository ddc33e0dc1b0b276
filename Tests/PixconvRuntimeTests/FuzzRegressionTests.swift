import Foundation
import PixconvTestSupport
import XCTest

@testable import PixconvRuntime

/// Replays fuzzing inputs through the entry points of the libFuzzer harnesses
/// `FuzzTesting/Sources/FuzzSpiece` and `FuzzConfig` (formats/fuzzing.md):
/// - every input they once crashed, hung or ran out of memory on, saved under
///   `Tests/PixconvRuntimeTests/Regressions/{spiece,config}/`, must now give a clean error (or a
///   model whose encodings stay inside its vocabulary);
/// - the seed models `FuzzTesting/Corpus/spiece/` (trained by sentencepiece, FuzzTesting/make_corpus.py)
///   must load and encode as sentencepiece's `SentencePieceProcessor.encode` does, and the scheduler
///   seeds `FuzzTesting/Corpus/config/` must give diffusers' timesteps.
final class RuntimeFuzzRegressionTests: XCTestCase {
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

    /// The minimised hostile models of `FuzzTesting/make_regressions.py` and the error each must
    /// give; inputs a fuzzer run adds later need no entry.
    private static let expectedSpieceErrors: [String: SentencePieceError] = [
        "spiece-truncated-piece": .truncated(offset: 59, what: "length-delimited field 1"),
        "spiece-bad-wire-type": .badWireType(offset: 59, field: 1, wireType: 7),
        "spiece-no-pieces": .noPieces,
    ]

    func testSpieceRegressionsFailCleanly() throws {
        let files = try FuzzFiles.list("Tests/PixconvRuntimeTests/Regressions/spiece")
        let missing = Set(Self.expectedSpieceErrors.keys).subtracting(files.map(\.name))
        XCTAssertTrue(missing.isEmpty, "Regressions/spiece: committed inputs missing: \(missing.sorted())")
        for (name, bytes) in files {
            do {
                _ = try replaySpiece(bytes, name)
                // A model whose encodings stayed inside its vocabulary is acceptable for a fuzzer
                // find; the committed hostile models must be refused.
                XCTAssertNil(Self.expectedSpieceErrors[name], "\(name): accepted")
            } catch {
                XCTAssertTrue(error is SentencePieceError, "\(name): unexpected error type \(type(of: error)): \(error)")
                if let expected = Self.expectedSpieceErrors[name] { XCTAssertEqual(error as? SentencePieceError, expected, name) }
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
        let seeds = try FuzzFiles.list("FuzzTesting/Corpus/spiece")
        XCTAssertEqual(Set(seeds.map(\.name)), Set(expected.keys))
        for (name, bytes) in seeds {
            let ids = try replaySpiece(bytes, name)
            XCTAssertEqual(Array(ids.prefix(2)), expected[name], name)
        }
    }

    // MARK: Configs

    /// `FuzzConfig`: scheduler config → every scheduler at a few step counts, all steps run; the
    /// component configs decoded and validated. Returns the timesteps per scheduler at 7 steps
    /// (or the error), and throws the scheduler config's decoding error.
    @discardableResult
    private func replayConfig(_ bytes: [UInt8]) throws -> [String: Result<[Float], Error>] {
        let json = Data(bytes)
        _ = try? PixArtConfig.decode(json: json).validate()
        _ = try? ConfigJSON.decode(T5Config.self, from: json).validate()
        _ = try? ConfigJSON.decode(VAEConfig.self, from: json).validate()
        let config = try SchedulerConfig.decode(json: json)
        var out: [String: Result<[Float], Error>] = [:]
        for name in ["dpm++2m", "ddim", "euler"] {
            for steps in [1, 2, 7, 20] {
                let made = Result { try makeScheduler(name: name, config: config, steps: steps) }
                if steps == 7 { out[name] = made.map(\.timesteps) }
                guard case var .success(scheduler) = made else { continue }
                var latent: [Float] = [0.5, -1, 2, 0]
                for i in 0..<steps {
                    let input = try scheduler.scaleModelInput(latent, stepIndex: i)
                    latent = try scheduler.step(modelOutput: input.map { $0 * 0.1 }, stepIndex: i, sample: latent)
                }
                XCTAssertEqual(latent.count, 4)
            }
        }
        return out
    }

    func testConfigRegressionsFailCleanly() throws {
        let files = try FuzzFiles.list("Tests/PixconvRuntimeTests/Regressions/config")
        XCTAssertGreaterThanOrEqual(files.count, 2)
        for (name, bytes) in files {
            do {
                let schedulers = try replayConfig(bytes)
                for (scheduler, result) in schedulers {
                    if case let .failure(error) = result {
                        XCTAssertTrue(error is SchedulerError, "\(name) \(scheduler): \(type(of: error)) \(error)")
                    }
                }
                if name.hasPrefix("scheduler-steps-offset") {
                    // Accepted as a config, refused by every scheduler (it used to trap in "leading").
                    for (scheduler, result) in schedulers {
                        guard case let .failure(error as SchedulerError) = result else {
                            XCTFail("\(name) \(scheduler): \(result)")
                            continue
                        }
                        XCTAssertTrue("\(error)".contains("steps_offset"), "\(error)")
                    }
                }
            } catch {
                // Foundation's JSON5 reader trapped on these; ConfigJSON's strict check rejects them.
                if name.hasPrefix("json5-") {
                    guard case let .invalidInput(message)? = error as? RuntimeError else { return XCTFail("\(name): \(error)") }
                    XCTAssertTrue(message.hasPrefix("config invalid json at byte "), message)
                } else {
                    XCTAssertTrue(error is DecodingError || error is RuntimeError, "\(name): \(type(of: error)) \(error)")
                }
            }
        }
    }

    func testSchedulerSeedsGiveDiffusersTimesteps() throws {
        // diffusers 0.42.1 `XScheduler.from_config(config).set_timesteps(7)`, rounded (Euler's are
        // fractional; numpy rounds half to even).
        let expected: [String: [String: [Float]]] = [
            "scheduler-dpm.json": ["dpm++2m": [999, 856, 714, 571, 428, 285, 143], "ddim": [999, 832, 666, 500, 333, 166, 0],
                                   "euler": [999, 832, 666, 500, 333, 166, 0]],
            "scheduler-leading.json": ["dpm++2m": [36, 31, 26, 21, 16, 11, 6], "ddim": [31, 26, 21, 16, 11, 6, 1],
                                       "euler": [31, 26, 21, 16, 11, 6, 1]],
            "scheduler-sample.json": ["dpm++2m": [24, 21, 17, 14, 10, 7, 3], "ddim": [24, 20, 16, 12, 8, 4, 0],
                                      "euler": [24, 20, 16, 12, 8, 4, 0]],
            "scheduler-trailing.json": ["dpm++2m": [29, 25, 20, 16, 12, 8, 3], "ddim": [29, 25, 20, 16, 12, 8, 3],
                                        "euler": [29, 25, 20, 16, 12, 8, 3]],
        ]
        let seeds = try FuzzFiles.list("FuzzTesting/Corpus/config")
        XCTAssertEqual(Set(seeds.map(\.name).filter { $0.hasPrefix("scheduler-") }), Set(expected.keys))
        for (name, bytes) in seeds {
            guard let want = expected[name] else {
                // Component configs: not scheduler configs' shape, but decodable and valid as components.
                XCTAssertNoThrow(try replayConfig(bytes), name)
                continue
            }
            for (scheduler, result) in try replayConfig(bytes) {
                let got = try result.get().map { $0.rounded(.toNearestOrEven) }
                XCTAssertEqual(got, want[scheduler], "\(name) \(scheduler)")
            }
        }
    }
}
