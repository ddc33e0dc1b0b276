import Foundation
import PixconvTestSupport
import XCTest

/// `FuzzFiles`, which every fuzz regression and seed test lists its inputs with: a missing or
/// empty folder is an error naming the folder, so that a replay loop can never pass over nothing.
final class FuzzFilesTests: XCTestCase {
    func testMissingFolderThrowsNamingIt() {
        XCTAssertThrowsError(try FuzzFiles.paths("Tests/PixconvReadersTests/Regressions/no-such-harness")) { error in
            guard let missing = error as? FuzzFiles.MissingFiles else { return XCTFail("\(type(of: error)): \(error)") }
            XCTAssertFalse(missing.exists)
            XCTAssertTrue("\(error)".contains("Tests/PixconvReadersTests/Regressions/no-such-harness: no such folder"), "\(error)")
        }
    }

    func testEmptyFolderThrowsNamingIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pixconv-fuzzfiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A hidden file does not count as an input.
        try Data([1]).write(to: dir.appendingPathComponent(".keep"))
        XCTAssertThrowsError(try FuzzFiles.paths(in: dir, named: "Regressions/empty")) { error in
            guard let missing = error as? FuzzFiles.MissingFiles else { return XCTFail("\(type(of: error)): \(error)") }
            XCTAssertTrue(missing.exists)
            XCTAssertTrue("\(error)".contains("Regressions/empty: the folder holds no file"), "\(error)")
        }
        try Data([2]).write(to: dir.appendingPathComponent("b"))
        try Data([1]).write(to: dir.appendingPathComponent("a"))
        XCTAssertEqual(try FuzzFiles.paths(in: dir, named: "x").map(\.name), ["a", "b"])
    }

    /// Every harness that reads files from outside has committed regression inputs.
    func testEveryHarnessHasRegressionInputs() throws {
        for folder in ["Tests/PixconvReadersTests/Regressions/safetensors", "Tests/PixconvReadersTests/Regressions/pickle",
                       "Tests/PixconvReadersTests/Regressions/zip", "Tests/PixconvStoreTests/Regressions/gguf",
                       "Tests/PixconvRuntimeTests/Regressions/spiece", "Tests/PixconvRuntimeTests/Regressions/config"] {
            XCTAssertFalse(try FuzzFiles.list(folder).isEmpty, folder)
        }
    }
}
