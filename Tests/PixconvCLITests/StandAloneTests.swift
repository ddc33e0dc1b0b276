import Foundation
import XCTest

/// The repository stands alone: no text file in it cites a document or path that is not in the
/// repository, and every `formats/…` file a text names exists. What the code needs from outside
/// documents is written in `formats/` (listed in `formats/README.md`).
final class StandAloneTests: XCTestCase {
    /// Citations of documents and paths outside the repository, built from pieces so that this
    /// file does not contain them itself.
    static let outsideCitations = [
        ".." + "/shared", "/work" + "/", "bad-" + "inputs.md", "pixart-" + "alpha.md",
        "fixtures-" + "contract.md", "cpu-" + "kernels.md",
    ]
    /// An outside notes file whose name is also the folder name here; only `formats/<name>` counts
    /// as a file of this repository.
    static let bareFormatsNotes = "formats" + ".md"

    private static let textExtensions: Set<String> = [
        "swift", "md", "py", "sh", "c", "h", "txt", "tsv", "json", "toml", "yml", "yaml", "dict",
    ]
    private static let skippedFolders: Set<String> = ["venv", "__pycache__", "node_modules"]

    /// Text files of the tree: files with a text extension, and extensionless scripts (`#!`),
    /// outside hidden folders (`.git`, `.build*`, `.swiftpm`, `FuzzTesting/.work`) and virtual
    /// environments. Paths are relative to the repository root.
    private func textFiles() throws -> [(path: String, text: String)] {
        var result: [(String, String)] = []
        let fm = FileManager.default
        func walk(_ relative: String) throws {
            let absolute = relative.isEmpty ? CLI.root : CLI.root + "/" + relative
            for name in try fm.contentsOfDirectory(atPath: absolute).sorted() {
                if name.hasPrefix(".") { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                let attributes = try fm.attributesOfItem(atPath: CLI.root + "/" + path)  // lstat: links not followed
                let type = attributes[.type] as? FileAttributeType
                if type == .typeDirectory {
                    if !Self.skippedFolders.contains(name) { try walk(path) }
                    continue
                }
                let ext = (name as NSString).pathExtension
                guard type == .typeRegular, Self.textExtensions.contains(ext) || ext.isEmpty else { continue }
                guard let data = fm.contents(atPath: CLI.root + "/" + path), data.count <= 4 << 20, !data.contains(0),
                      let text = String(data: data, encoding: .utf8) else { continue }
                if ext.isEmpty && !text.hasPrefix("#!") { continue }
                result.append((path, text))
            }
        }
        try walk("")
        return result
    }

    /// The outside citations on one line of text.
    static func outsideCitations(in line: Substring) -> [String] {
        var found = outsideCitations.filter { line.contains($0) }
        var rest = line[...]
        while let r = rest.range(of: bareFormatsNotes) {
            let before = rest[..<r.lowerBound].last
            if before.map({ !($0 == "/" || $0 == "-" || $0 == "_" || $0.isLetter || $0.isNumber) }) ?? true {
                found.append(bareFormatsNotes)
                break
            }
            rest = rest[r.upperBound...]
        }
        return found
    }

    func testMatcherFindsOutsideCitations() {
        for needle in Self.outsideCitations {
            XCTAssertEqual(Self.outsideCitations(in: "see `\(needle)` §2"), [needle])
        }
        XCTAssertEqual(Self.outsideCitations(in: "see `\(Self.bareFormatsNotes)` §4.1"), [Self.bareFormatsNotes])
        XCTAssertEqual(Self.outsideCitations(in: "formats/hostile-inputs.md, formats/README.md, /tmp/pixconv-bench"), [])
        XCTAssertEqual(Self.outsideCitations(in: "formats/\(Self.bareFormatsNotes)"), [])
    }

    func testNoTextCitesADocumentOutsideTheRepository() throws {
        let files = try textFiles()
        let paths = Set(files.map(\.path))
        // The walk reached the sources, tests, formats and scripts (and this file).
        XCTAssertGreaterThan(files.count, 100)
        for expected in ["Tests/PixconvCLITests/StandAloneTests.swift", "formats/hostile-inputs.md", "scripts/fuzz",
                         "Sources/PixconvReaders/ZipArchive.swift", "README.md"] {
            XCTAssertTrue(paths.contains(expected), "the scan did not read \(expected)")
        }
        var failures: [String] = []
        for (path, text) in files {
            for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                for needle in Self.outsideCitations(in: line) {
                    failures.append("\(path):\(i + 1): cites \(needle), which is not in the repository")
                }
            }
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }

    func testEveryCitedFormatsFileExists() throws {
        let pattern = try NSRegularExpression(pattern: #"formats/([A-Za-z0-9_.-]+\.(?:md|tsv))"#)
        var failures: [String] = []
        var cited = 0
        for (path, text) in try textFiles() {
            for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let s = String(line)
                for match in pattern.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
                    let name = String(s[Range(match.range(at: 1), in: s)!])
                    cited += 1
                    if !FileManager.default.fileExists(atPath: CLI.root + "/formats/" + name) {
                        failures.append("\(path):\(i + 1): cites formats/\(name), which does not exist")
                    }
                }
            }
        }
        XCTAssertGreaterThan(cited, 20)
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }
}
