import Foundation
import PixconvCore
import XCTest

/// Crash-safe writes: a conversion killed at any point, a full disk, and two conversions racing
/// for one target never leave a partial or damaged output (bad-inputs.md §4.2).
final class CrashSafetyTests: XCTestCase {
    private func store(_ dir: String, _ name: String) -> String { dir + "/" + name }

    /// Starts `pixconv convert`, kills it with SIGKILL after `delay`, and returns whether it had finished.
    private func convertAndKill(to out: String, force: Bool, after delay: Double) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["convert", CLI.fixture("tiny-pixart-1024ms"), "-o", out, "--type", "q4_0"] + (force ? ["--force"] : [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        let finished = !process.isRunning
        if !finished { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return finished && process.terminationStatus == 0
    }

    func testKillAtRandomPointsLeavesTargetAbsentOrUnchanged() throws {
        let dir = try CLI.temporaryDirectory()
        let out = store(dir, "t.gguf")
        var generator = SystemRandomNumberGenerator()
        // Into a fresh target: afterwards it is either absent or a complete, valid store.
        for _ in 0..<6 {
            try? FileManager.default.removeItem(atPath: out)
            _ = try convertAndKill(to: out, force: false, after: Double.random(in: 0.01...0.4, using: &generator))
            if FileManager.default.fileExists(atPath: out) {
                XCTAssertEqual(try CLI.run(["verify", "--model", out]).status, 0, "a published store is complete")
            }
        }
        // Over an existing target with --force: afterwards it is the old or the new store, intact.
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", "f16", "--force"]).status, 0)
        let old = try Data(contentsOf: URL(fileURLWithPath: out))
        for _ in 0..<6 {
            let finished = try convertAndKill(to: out, force: true, after: Double.random(in: 0.01...0.4, using: &generator))
            XCTAssertEqual(try CLI.run(["verify", "--model", out]).status, 0)
            if !finished {
                let now = try Data(contentsOf: URL(fileURLWithPath: out))
                XCTAssertTrue(now == old || now.count > 0)
            }
        }
        // The next conversion removes temporary files left by killed writers.
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", "f16", "--force"]).status, 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(leftovers, [], "stale temporary files are cleaned")
    }

    func testFullDiskIsAnErrorAndLeavesNothing() throws {
        if CLI.isThreadSanitized {
            throw XCTSkip("ThreadSanitizer's runtime cannot start under `ulimit -f` (SIGBUS before main)")
        }
        let dir = try CLI.temporaryDirectory()
        let out = store(dir, "t.gguf")
        // A 64 KiB file-size limit stands in for a full disk: writes fail with EFBIG.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "ulimit -f 64; exec \"$0\" convert \"$1\" -o \"$2\" --type f32", CLI.binary,
                             CLI.fixture("tiny-pixart-512"), out]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1, message)
        XCTAssertTrue(message.contains("t.gguf"), message)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no partial output, no temporary file")
    }

    func testConcurrentConversionsToOneTarget() throws {
        let dir = try CLI.temporaryDirectory()
        let out = store(dir, "t.gguf")
        func launch(_ type: String, force: Bool) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", type] + (force ? ["--force"] : [])
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        // Without --force exactly one publishes; the other reports that the target exists.
        let a = try launch("q8_0", force: false), b = try launch("q4_0", force: false)
        a.waitUntilExit()
        b.waitUntilExit()
        XCTAssertEqual([a.terminationStatus, b.terminationStatus].sorted(), [0, 1])
        XCTAssertEqual(try CLI.run(["verify", "--model", out]).status, 0)
        // With --force both succeed and the target is one complete store.
        let c = try launch("f16", force: true), d = try launch("bf16", force: true)
        c.waitUntilExit()
        d.waitUntilExit()
        XCTAssertEqual([c.terminationStatus, d.terminationStatus], [0, 0])
        XCTAssertEqual(try CLI.run(["verify", "--model", out]).status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["t.gguf"])
    }

    func testMappedOldStoreStaysValidWhileReplaced() throws {
        let dir = try CLI.temporaryDirectory()
        let out = store(dir, "t.gguf")
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", "q8_0"]).status, 0)
        let mapped = try MappedFile(path: out)
        let before = Data(mapped.bytes)
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-1024ms"), "-o", out, "--type", "f16", "--force"]).status, 0)
        XCTAssertEqual(Data(mapped.bytes), before, "the old mapping still sees the old, complete store")
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before)
    }
}
