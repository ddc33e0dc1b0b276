import Foundation

/// Files saved by the libFuzzer harnesses (`FuzzTesting/`): regression inputs under
/// `Tests/<target>/Regressions/<harness>/` and the seed corpora under `FuzzTesting/Corpus/<harness>/`.
public enum FuzzFiles {
    /// The package root: this file is `Tests/PixconvTestSupport/FuzzFiles.swift`.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// (file name, absolute path) of every file in `folderRelativeToPackageRoot`, sorted by name,
    /// hidden files left out; none when the folder does not exist.
    public static func paths(_ folderRelativeToPackageRoot: String) throws -> [(name: String, path: String)] {
        let url = packageRoot.appendingPathComponent(folderRelativeToPackageRoot)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().filter { !$0.hasPrefix(".") }.map {
            ($0, url.appendingPathComponent($0).path)
        }
    }

    /// (file name, bytes) of every file in `folderRelativeToPackageRoot`, as `paths(_:)` lists them.
    public static func list(_ folderRelativeToPackageRoot: String) throws -> [(name: String, bytes: [UInt8])] {
        try paths(folderRelativeToPackageRoot).map { ($0.name, [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0.path)))) }
    }
}
