import Foundation
import XCTest

/// Runs the built `pixconv` binary and captures its exit status and output.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The `pixconv` of this test build: `swift build --build-tests` (and `swift test`) put every
    /// product of one build, test bundle included, in one folder (`<scratch>/<triple>/<config>/`),
    /// so the binary beside the running tests is the one built from the same tree with the same
    /// flags (sanitizers too). No other path is tried: a `pixconv` from another build could be
    /// stale. Throws `MissingBinary` when it is not there.
    static var binary: String {
        get throws { try binary(in: productsDirectory) }
    }

    /// `folder/pixconv`, or `MissingBinary` naming that path when it is not an executable file.
    static func binary(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("pixconv").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw MissingBinary(path: path) }
        return path
    }

    struct MissingBinary: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "no pixconv binary at \(path), beside the test bundle: the CLI tests run the pixconv of their own build "
                + "(build it with `swift build --build-tests` and the same --scratch-path / -c / --sanitize as the tests)"
        }
    }

    /// The folder holding the running test bundle and the other products of its build. On Linux
    /// the test bundle is the executable of this process; on macOS it is the `.xctest` bundle
    /// that `xctest` loaded.
    static var productsDirectory: URL {
        #if os(macOS)
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        #endif
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return executable.resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func fixture(_ path: String) -> String { root + "/fixtures/" + path }

    /// True when the tests (and so the `pixconv` beside them) were built with `--sanitize=thread`.
    /// ThreadSanitizer's runtime dies with SIGBUS while starting under a file-size limit
    /// (`ulimit -f 64; pixconv --help` crashes before `main`), so the full-disk test cannot run there.
    static var isThreadSanitized: Bool { dlsym(dlopen(nil, RTLD_NOW), "__tsan_init") != nil }

    /// Runs `executable` (by default the built `pixconv`) with `arguments`, optionally in
    /// `directory` and with `environment` instead of the test process's, and waits for it.
    @discardableResult
    static func run(_ arguments: [String], in directory: String? = nil, executable: String? = nil,
                    environment: [String: String]? = nil) throws -> CLIResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable ?? binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a large output cannot block the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "pixconv-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
