import Foundation
import XCTest

/// The fixtures can be rebuilt by one documented command: `fixtures/README.md` names every folder
/// under `fixtures/`, `scripts/make_fixtures.py` runs every other script that writes there, and
/// `scripts/requirements-fixtures.txt` pins every package those scripts and the check scripts import.
final class FixtureScriptsTests: XCTestCase {
    private func text(_ relative: String) throws -> String {
        try String(contentsOfFile: CLI.root + "/" + relative, encoding: .utf8)
    }

    private func entries(_ relative: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: CLI.root + "/" + relative).sorted()
    }

    func testReadmeNamesEveryFixtureFolder() throws {
        let readme = try text("fixtures/README.md")
        let folders = try entries("fixtures").filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: CLI.root + "/fixtures/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        XCTAssertGreaterThanOrEqual(folders.count, 12, "\(folders)")
        for folder in folders {
            // A row of the table: | `folder/` | stage | made by | used by |
            XCTAssertTrue(readme.contains("| `\(folder)/` |"), "fixtures/README.md has no table row for \(folder)/")
        }
    }

    func testMakeFixturesRunsEveryFixtureScript() throws {
        let main = try text("scripts/make_fixtures.py")
        let scripts = try entries("scripts").filter { $0.hasPrefix("make_") && $0.hasSuffix(".py") }
        XCTAssertFalse(scripts.isEmpty)
        for script in scripts where script != "make_fixtures.py" && !script.hasPrefix("make_fullsize_") {
            let stem = String(script.dropLast(3))
            // Either a script stage ("…": "make_x.py") or imported and called (make_reference).
            XCTAssertTrue(main.contains("\"\(script)\"") || main.contains("import \(stem)"),
                          "scripts/make_fixtures.py does not run scripts/\(script)")
        }
    }

    /// Standard-library modules the scripts import; anything else must be pinned.
    private static let standardLibrary: Set<String> = [
        "__future__", "argparse", "ast", "base64", "bisect", "codecs", "collections", "contextlib", "copy", "csv",
        "dataclasses", "datetime", "enum", "functools", "gc", "glob", "gzip", "hashlib", "html", "importlib", "inspect", "io",
        "itertools", "json", "math", "multiprocessing", "os", "pathlib", "pickle", "platform", "random", "re",
        "resource", "shutil", "signal", "statistics", "string", "struct", "subprocess", "sys", "tarfile", "tempfile",
        "textwrap", "this", "threading", "time", "types", "typing", "unicodedata", "urllib", "uuid", "warnings", "zipfile", "zlib",
    ]
    /// Import name → pip package name where they differ.
    private static let packageNames = ["PIL": "pillow", "skimage": "scikit-image", "google": "protobuf", "bs4": "beautifulsoup4"]

    func testRequirementsPinEveryImportedPackage() throws {
        var pinned: [String: String] = [:]
        for line in try text("scripts/requirements-fixtures.txt").split(separator: "\n") {
            let spec = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingCharacters(in: .whitespaces)
            guard !spec.isEmpty else { continue }
            let parts = spec.components(separatedBy: "==")
            XCTAssertEqual(parts.count, 2, "not pinned with ==: \(spec)")
            if parts.count == 2, !parts[1].isEmpty { pinned[parts[0].lowercased()] = parts[1] }
        }
        let scripts = try entries("scripts").filter {
            $0.hasSuffix(".py") && ($0.hasPrefix("make_") || $0.hasPrefix("check_") || $0.hasPrefix("compare_"))
        }.map { "scripts/" + $0 } + ["FuzzTesting/make_corpus.py", "FuzzTesting/make_regressions.py"]
        let local = Set(try entries("scripts").filter { $0.hasSuffix(".py") }.map { String($0.dropLast(3)) })
        let pattern = try NSRegularExpression(pattern: #"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import\b|import\s+([A-Za-z_][\w., ]*?)\s*(?:#.*)?$)"#,
                                              options: [.anchorsMatchLines])
        for script in scripts {
            let source = try text(script)
            var modules: Set<String> = []
            for match in pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)) {
                if let r = Range(match.range(at: 1), in: source) { modules.insert(String(source[r])) }
                if let r = Range(match.range(at: 2), in: source) {
                    for item in source[r].split(separator: ",") {
                        // "numpy as np", "torch.nn.functional as F" → the top-level module
                        let name = item.trimmingCharacters(in: .whitespaces).split(separator: " ")[0].split(separator: ".")[0]
                        modules.insert(String(name))
                    }
                }
            }
            for module in modules.sorted() where !Self.standardLibrary.contains(module) && !local.contains(module) {
                let package = Self.packageNames[module] ?? module
                XCTAssertNotNil(pinned[package.lowercased()],
                                "\(script) imports \(module): scripts/requirements-fixtures.txt must pin \(package)==VERSION")
            }
        }
        // The packages the fixture scripts are known to need (a regex miss would hide them above).
        for package in ["torch", "diffusers", "transformers", "safetensors", "sentencepiece", "numpy", "pillow", "gguf", "scikit-image"] {
            XCTAssertNotNil(pinned[package], "scripts/requirements-fixtures.txt must pin \(package)")
        }
    }
}
