import Foundation

/// Files saved by the libFuzzer harnesses (`FuzzTesting/`): regression inputs under
/// `Tests/<target>/Regressions/<harness>/` and the seed corpora under `FuzzTesting/Corpus/<harness>/`.
public enum FuzzFiles {
    /// The package root: this file is `Tests/PixconvTestSupport/FuzzFiles.swift`.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// A fuzz folder that is missing or holds no file: a replay test over it would check nothing.
    public struct MissingFiles: Error, CustomStringConvertible {
        public let folder: String
        public let exists: Bool
        public var description: String {
            "\(folder): " + (exists ? "the folder holds no file" : "no such folder")
                + " (a regression or seed test must replay at least one input; formats/fuzzing.md §3)"
        }
    }

    /// (file name, absolute path) of every file in `folderRelativeToPackageRoot`, sorted by name,
    /// hidden files left out. Throws `MissingFiles` when the folder does not exist or lists no
    /// file, so that a replay test over it fails instead of looping over nothing.
    public static func paths(_ folderRelativeToPackageRoot: String) throws -> [(name: String, path: String)] {
        try paths(in: packageRoot.appendingPathComponent(folderRelativeToPackageRoot), named: folderRelativeToPackageRoot)
    }

    /// `paths(_:)` for the folder at `url`, reported as `name`.
    public static func paths(in url: URL, named name: String) throws -> [(name: String, path: String)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MissingFiles(folder: name, exists: false)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().filter { !$0.hasPrefix(".") }.map {
            ($0, url.appendingPathComponent($0).path)
        }
        guard !files.isEmpty else { throw MissingFiles(folder: name, exists: true) }
        return files
    }

    /// (file name, bytes) of every file in `folderRelativeToPackageRoot`, as `paths(_:)` lists them.
    public static func list(_ folderRelativeToPackageRoot: String) throws -> [(name: String, bytes: [UInt8])] {
        try paths(folderRelativeToPackageRoot).map { ($0.name, [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0.path)))) }
    }
}
