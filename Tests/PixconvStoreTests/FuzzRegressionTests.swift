import Foundation
import PixconvCore
import PixconvTestSupport
import XCTest

@testable import PixconvStore

/// Replays fuzzing inputs through the entry point of the libFuzzer harness
/// `FuzzTesting/Sources/FuzzGGUF` (formats/fuzzing.md):
/// - every input it once crashed, hung or ran out of memory on, saved under
///   `Tests/PixconvStoreTests/Regressions/gguf/`, must now give a clean `StoreError` (the
///   minimised hostile headers of FuzzTesting/make_regressions.py the one `expectedErrors`
///   names); a missing or empty folder fails the test;
/// - the seed corpus `FuzzTesting/Corpus/gguf/` (gguf-py files and two stores written by
///   `pixconv convert`) must be read whole, with the tensor counts gguf-py's `GGUFReader` reports.
final class StoreFuzzRegressionTests: XCTestCase {
    /// `FuzzGGUF`: the GGUF reader (every tensor handed out), then the store conventions without the
    /// header CRC and every check `pixconv verify` runs. Returns the GGUF tensor count and the
    /// store's damage report (nil: intact), or the store's error.
    private func replayGGUF(_ path: String) throws(StoreError) -> (tensors: Int, store: Result<StoreDamage?, StoreError>) {
        let file = try GGUFFile(path: path)
        for t in file.tensors { XCTAssertEqual(try file.data(for: t.name).bytes.count, t.byteCount, t.name) }
        let store = Result { () throws(StoreError) -> StoreDamage? in
            let s = try PixconvStore(path: path, checkHeader: false)
            _ = s.spieceModel
            for c in s.components { _ = s.config(for: c) }
            return s.verifyAll()
        }
        return (file.tensors.count, store)
    }

    /// What the minimised hostile inputs of `FuzzTesting/make_regressions.py` must be refused
    /// with (a fragment of the error message); inputs a fuzzer run adds later need no entry.
    private static let expectedErrors = [
        "gguf-tensor-count-2^64-1": "tensor count 18446744073709551615 at byte 8 does not fit",
        "gguf-metadata-count-2^63": "metadata count 9223372036854775808 at byte 16 does not fit",
        "gguf-key-length-2^64-1": "bad string at byte 24",
    ]

    func testGGUFRegressionsFailCleanly() throws {
        let files = try FuzzFiles.paths("Tests/PixconvStoreTests/Regressions/gguf")
        let missing = Set(Self.expectedErrors.keys).subtracting(files.map(\.name))
        XCTAssertTrue(missing.isEmpty, "Regressions/gguf: committed inputs missing: \(missing.sorted())")
        for (name, path) in files {
            do {
                let (n, store) = try replayGGUF(path)
                if !name.hasPrefix("accept-") {
                    // Readable as GGUF is allowed only when the store layer then refuses it.
                    switch store {
                    case let .failure(error):
                        if let fragment = Self.expectedErrors[name] {
                            XCTAssertTrue(error.description.contains(fragment), "\(name): expected “\(fragment)”, got: \(error)")
                        }
                    case let .success(damage): XCTAssertNotNil(damage, "\(name): accepted as a store with \(n) tensors")
                    }
                }
            } catch {
                XCTAssertFalse(error.description.isEmpty, name)
                if let fragment = Self.expectedErrors[name] {
                    XCTAssertTrue(error.description.contains(fragment), "\(name): expected “\(fragment)”, got: \(error)")
                }
            }
        }
    }

    func testGGUFSeedsAreAccepted() throws {
        let seeds = try FuzzFiles.paths("FuzzTesting/Corpus/gguf")
        // Tensor counts from gguf-py 0.19 `GGUFReader` (FuzzTesting/make_corpus.py).
        let expected = ["gguf-py.gguf": 9, "types.gguf": 4, "store-tokenizer.gguf": 0, "store-dit-q4_0.gguf": 57]
        XCTAssertEqual(Set(seeds.map(\.name)), Set(expected.keys))
        for (name, path) in seeds {
            let (n, store) = try replayGGUF(path)
            XCTAssertEqual(n, expected[name], name)
            if name.hasPrefix("store-") {
                // Written by `pixconv convert`: a complete store, every CRC intact.
                XCTAssertNoThrow(try PixconvStore(path: path, checkHeader: true), name)
                guard case let .success(damage) = store else { return XCTFail("\(name): \(store)") }
                XCTAssertNil(damage, name)
            }
            if name == "types.gguf" {
                // A plain gguf-py file: no pixconv.version, so not a store.
                guard case let .failure(error) = store else { return XCTFail("\(name): accepted as a store") }
                XCTAssertTrue(error.description.contains("pixconv.version"), error.description)
            }
        }
    }
}
