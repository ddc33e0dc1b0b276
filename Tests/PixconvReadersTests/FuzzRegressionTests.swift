import Foundation
import PixconvCore
import PixconvTestSupport
import XCTest

@testable import PixconvReaders

/// Replays fuzzing inputs through the entry points of the libFuzzer harnesses in
/// `FuzzTesting/Sources/Fuzz{Safetensors,Pickle,Zip}` (formats/fuzzing.md):
/// - every input a harness once crashed, hung or ran out of memory on, saved under
///   `Tests/PixconvReadersTests/Regressions/<target>/`, must now give a clean reader error (the
///   test process would trap otherwise), and the minimised hostile inputs committed with the
///   tests (FuzzTesting/make_regressions.py) the error their entry in `expectedErrors` names; a
///   missing or empty folder fails the test (`FuzzFiles.MissingFiles`);
/// - the seed corpora `FuzzTesting/Corpus/<target>/`, written by safetensors, torch and pickle
///   (FuzzTesting/make_corpus.py), must be accepted whole.
final class ReadersFuzzRegressionTests: XCTestCase {
    private static func regressions(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let files = try FuzzFiles.list("Tests/PixconvReadersTests/Regressions/\(target)")
        let missing = Set(expectedErrors[target, default: [:]].keys).subtracting(files.map(\.name))
        XCTAssertTrue(missing.isEmpty, "Regressions/\(target): committed inputs missing: \(missing.sorted())")
        return files
    }

    /// What the minimised hostile inputs of `FuzzTesting/make_regressions.py` must be refused
    /// with (a fragment of the error message). Inputs a fuzzer run adds later need no entry: for
    /// them any clean reader error will do.
    private static let expectedErrors: [String: [String: String]] = [
        "safetensors": [
            "st-header-too-small": "header too small",
            "st-header-too-large": "header too large",
            "st-file-truncated": "file truncated",
        ],
        "pickle": [
            "pk-disallowed-global-os-system": "disallowed global `os.system`",
            "pk-disallowed-global-builtins-eval-stack-global": "disallowed global `builtins.eval`",
            "pk-memo-never-set": "memo index 5 was never set",
        ],
        "zip": [
            "zip-central-directory-outside-file": "lies outside the file",
            "zip-central-directory-entry-count": "entry counts disagree",
            "zip-empty-file": "empty file",
        ],
    ]

    /// Checks `error` against the expected message fragment for `name`, if it has one.
    private func assertExpected(_ target: String, _ name: String, _ error: Error, file: StaticString = #filePath, line: UInt = #line) {
        guard let fragment = Self.expectedErrors[target]?[name] else { return }
        XCTAssertTrue("\(error)".contains(fragment), "\(target)/\(name): expected “\(fragment)”, got: \(error)", file: file, line: line)
    }

    private static func seeds(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        try FuzzFiles.list("FuzzTesting/Corpus/\(target)")
    }

    /// Writes `bytes` to a fresh temporary file, removed when `body` returns.
    private func withFuzzFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pixconv-fuzz-\(UUID().uuidString).bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    // MARK: Entry points (the harnesses' bodies, with errors surfaced)

    /// `FuzzSafetensors`: the header parser on the bytes, then the mapped-file reader. Returns the
    /// tensor count.
    @discardableResult
    private func replaySafetensors(_ bytes: [UInt8]) throws -> Int {
        let header = try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0, path: "fuzz") }
        for e in header.entries {
            XCTAssertTrue(e.range.lowerBound >= header.dataStart && e.range.upperBound <= bytes.count, e.info.name)
            XCTAssertEqual(e.info.dtype.byteCount(elements: elementCount(e.info.shape) ?? -1), e.range.count, e.info.name)
        }
        return try withFuzzFile(bytes) { path in
            let file = try SafetensorsFile(path: path)
            for t in file.tensors { XCTAssertEqual(try file.data(for: t.name).bytes.count, t.byteCount, t.name) }
            return file.tensors.count
        }
    }

    /// `FuzzPickle`: the VM with zip persistent ids (whole input), then with legacy ids (prefix).
    private func replayPickle(_ bytes: [UInt8]) -> (zip: Result<PickleMachine.Result, PickleError>,
                                                      legacy: Result<PickleMachine.Result, PickleError>) {
        var limits = PickleMachine.Limits()
        limits.maxOperations = 200_000
        limits.maxNodes = 200_000
        return bytes.withUnsafeBytes { raw in
            (Result { () throws(PickleError) in try PickleMachine.run(raw, persistentIDs: .zip, limits: limits) },
             Result { () throws(PickleError) in
                 try PickleMachine.run(raw, persistentIDs: .legacy, requireEnd: false, limits: limits)
             })
        }
    }

    /// `FuzzZip`: the zip reader (every entry read and CRC-checked), then the checkpoint reader
    /// (every tensor extracted). Returns the tensor names.
    @discardableResult
    private func replayZip(_ bytes: [UInt8]) throws -> [String] {
        try withFuzzFile(bytes) { path in
            let file = try MappedFile(path: path)
            var zipError: Error?
            do {
                let archive = try ZipArchive(file: file)
                for entry in archive.entries { _ = try archive.read(entry, limit: 1 << 20) }
            } catch {
                zipError = error  // a legacy checkpoint is no zip; the checkpoint reader decides
            }
            let checkpoint = try TorchCheckpoint(file: file)
            if zipError != nil { XCTAssertEqual(checkpoint.format, .legacy) }
            for t in checkpoint.tensors { XCTAssertEqual(try checkpoint.data(for: t.name).bytes.count, t.byteCount, t.name) }
            return checkpoint.tensors.map(\.name)
        }
    }

    /// A reader error with context, not a trap or a stray Foundation/Swift error.
    private func assertCleanError(_ error: Error, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let clean = error is ReaderError || error is ZipError || error is TorchError || error is PickleError
            || error is FileError || error is JSONError
        XCTAssertTrue(clean, "\(what): unexpected error type \(type(of: error)): \(error)", file: file, line: line)
        XCTAssertFalse("\(error)".isEmpty, what, file: file, line: line)
    }

    // MARK: Regression inputs

    func testSafetensorsRegressionsFailCleanly() throws {
        for (name, bytes) in try Self.regressions("safetensors") {
            do {
                let n = try replaySafetensors(bytes)
                XCTAssertTrue(name.hasPrefix("accept-"), "\(name): accepted with \(n) tensors")
            } catch {
                assertCleanError(error, name)
                assertExpected("safetensors", name, error)
            }
        }
    }

    func testPickleRegressionsFailCleanly() throws {
        for (name, bytes) in try Self.regressions("pickle") {
            let (zip, legacy) = replayPickle(bytes)
            if !name.hasPrefix("accept-") {
                switch zip {
                case .success: XCTFail("\(name): accepted with zip persistent ids")
                case let .failure(error): assertExpected("pickle", name, error)
                }
                switch legacy {
                case .success: XCTFail("\(name): accepted with legacy persistent ids")
                case let .failure(error): assertExpected("pickle", name, error)
                }
            }
        }
    }

    func testZipRegressionsFailCleanly() throws {
        for (name, bytes) in try Self.regressions("zip") {
            do {
                let tensors = try replayZip(bytes)
                XCTAssertTrue(name.hasPrefix("accept-"), "\(name): accepted with \(tensors.count) tensors")
            } catch {
                assertCleanError(error, name)
                assertExpected("zip", name, error)
            }
        }
    }

    // MARK: Seed corpora (valid files written by the reference libraries)

    func testSafetensorsSeedsAreAccepted() throws {
        let seeds = try Self.seeds("safetensors")
        XCTAssertGreaterThanOrEqual(seeds.count, 4)
        // Tensor counts as safetensors 0.8.0 wrote them (FuzzTesting/make_corpus.py).
        let expected = ["bf16-f8.safetensors": 2, "empty.safetensors": 0, "mixed.safetensors": 6, "one-f32.safetensors": 1]
        for (name, bytes) in seeds {
            let n = try replaySafetensors(bytes)
            if let e = expected[name] { XCTAssertEqual(n, e, name) }
        }
    }

    func testPickleSeedsAreAccepted() throws {
        let seeds = try Self.seeds("pickle")
        XCTAssertGreaterThanOrEqual(seeds.count, 5)
        for (name, bytes) in seeds {
            let (zip, legacy) = replayPickle(bytes)
            if name.hasSuffix(".pkl") {
                guard case let .success(r) = zip else { return XCTFail("\(name): \(zip)") }
                XCTAssertEqual(r.end, bytes.count, name)
            } else {
                // The legacy stream's first pickle is its magic number, a plain integer.
                guard case let .success(r) = legacy else { return XCTFail("\(name): \(legacy)") }
                XCTAssertEqual(r.value, .bigInt("119547037146038801333356"), name)
            }
        }
        // Protocols 0–5 of the same OrderedDict (CPython pickle.dumps) decode to the same value.
        let plain = seeds.filter { $0.name.hasPrefix("plain-p") }.map { replayPickle($0.bytes).zip }
        XCTAssertEqual(plain.count, 5)
        let values = plain.compactMap { try? $0.get().value }
        XCTAssertEqual(values.count, 5)
        for v in values.dropFirst() { XCTAssertEqual(v, values[0]) }
    }

    func testZipSeedsAreAccepted() throws {
        let seeds = try Self.seeds("zip")
        XCTAssertGreaterThanOrEqual(seeds.count, 5)
        // Tensor names torch.save wrote (FuzzTesting/make_corpus.py).
        let expected = ["small.pt": ["a"], "view.pt": ["h", "i"]]
        for (name, bytes) in seeds {
            let names = try replayZip(bytes)
            XCTAssertFalse(names.isEmpty, name)
            if let e = expected[name] { XCTAssertEqual(names, e, name) }
        }
    }
}
