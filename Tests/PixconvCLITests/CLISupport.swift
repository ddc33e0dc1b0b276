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

    /// `.build/<config>/pixconv`, beside the test bundle.
    static var binary: String {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("pixconv").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return root + "/.build/debug/pixconv"
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
        process.executableURL = URL(fileURLWithPath: executable ?? binary)
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
