import Foundation
import XCTest

/// `FuzzTesting/` builds its harnesses against the root package's `PixconvModules` product
/// instead of a hand-written copy of the module graph (formats/fuzzing.md §1, "Build layout").
final class FuzzPackageTests: XCTestCase {
    private func text(_ relative: String) throws -> String {
        try String(contentsOfFile: CLI.root + "/" + relative, encoding: .utf8)
    }

    func testFuzzPackageUsesTheRootPackageProduct() throws {
        let manifest = try text("FuzzTesting/Package.swift")
        XCTAssertTrue(manifest.contains(#".package(name: "pixconv", path: "..")"#), "FuzzTesting depends on the root package")
        XCTAssertTrue(manifest.contains(#".product(name: "PixconvModules", package: "pixconv")"#))
        XCTAssertFalse(manifest.contains(#"path: "Sources/Pixconv"#), "no pixconv target compiled again from a copy")
        // No symlinks into ../Sources are left to restate the graph.
        let sources = CLI.root + "/FuzzTesting/Sources"
        for entry in try FileManager.default.contentsOfDirectory(atPath: sources) {
            let attributes = try FileManager.default.attributesOfItem(atPath: sources + "/" + entry)
            XCTAssertNotEqual(attributes[.type] as? FileAttributeType, .typeSymbolicLink, "FuzzTesting/Sources/\(entry) is a symlink")
            XCTAssertTrue(entry == "CFuzzShim" || entry.hasPrefix("Fuzz"), "FuzzTesting/Sources/\(entry) is not a harness target")
        }
    }

    /// Every pixconv library target of the root manifest is in the product the harnesses link.
    func testPixconvModulesProductListsEveryLibraryTarget() throws {
        let manifest = try text("Package.swift")
        let targets = try NSRegularExpression(pattern: #"\.target\(\s*name:\s*"(Pixconv\w+)"([^)]*)\)"#)
        var libraries: [String] = []
        for match in targets.matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)) {
            let name = String(manifest[Range(match.range(at: 1), in: manifest)!])
            let rest = String(manifest[Range(match.range(at: 2), in: manifest)!])
            if !rest.contains(#"path: "Tests/"#) { libraries.append(name) }
        }
        XCTAssertTrue(libraries.contains("PixconvRuntime"), "\(libraries)")
        let product = try NSRegularExpression(pattern: #"\.library\(\s*name:\s*"PixconvModules",\s*targets:\s*\[([^\]]*)\]"#)
        let match = try XCTUnwrap(product.firstMatch(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)),
                                  "Package.swift has no PixconvModules library product")
        let listed = manifest[Range(match.range(at: 1), in: manifest)!]
        for name in libraries {
            XCTAssertTrue(listed.contains("\"\(name)\""), "PixconvModules (Package.swift) does not list \(name)")
        }
    }
}
