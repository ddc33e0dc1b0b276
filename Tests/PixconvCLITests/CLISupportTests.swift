import Foundation
import XCTest

/// The CLI tests run the `pixconv` of their own build, never one found elsewhere.
final class CLISupportTests: XCTestCase {
    func testBinaryIsTheOneBesideTheTestBundle() throws {
        let binary = URL(fileURLWithPath: try CLI.binary)
        let folder = CLI.productsDirectory.standardizedFileURL
        XCTAssertEqual(binary.deletingLastPathComponent().standardizedFileURL, folder)
        // That folder is the test build's: it holds the test bundle and the modules built with it.
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        XCTAssertTrue(entries.contains { $0.hasSuffix(".xctest") }, "\(folder.path): \(entries.sorted())")
        XCTAssertTrue(entries.contains("Modules") || entries.contains { $0.hasSuffix(".swiftmodule") }, "\(entries.sorted())")
        XCTAssertEqual(try CLI.run(["--help"]).status, 0)
    }

    func testMissingBinaryIsAnErrorNamingThePath() throws {
        let empty = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        XCTAssertThrowsError(try CLI.binary(in: URL(fileURLWithPath: empty))) { error in
            XCTAssertTrue(error is CLI.MissingBinary, "\(type(of: error))")
            XCTAssertTrue("\(error)".contains("no pixconv binary at \(empty)/pixconv"), "\(error)")
        }
    }
}
