import Foundation
import PixconvCore
import PixconvImage
import XCTest

/// Crash-safe writes: a conversion killed at any point, a full disk, and two conversions racing
/// for one target never leave a partial or damaged output (the write protocol and reliability
/// properties of `formats/hostile-inputs.md`, "Writes: reliability properties").
final class CrashSafetyTests: XCTestCase {
    private func store(_ dir: String, _ name: String) -> String { dir + "/" + name }

    /// Starts `pixconv convert`, kills it with SIGKILL after `delay`, and returns whether it had finished.
    private func convertAndKill(to out: String, force: Bool, after delay: Double) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CLI.binary)
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
        let result = try CLI.run(["-c", "ulimit -f 64; exec \"$0\" convert \"$1\" -o \"$2\" --type f32", CLI.binary,
                                  CLI.fixture("tiny-pixart-512"), out], executable: "/bin/bash")
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("t.gguf"), result.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no partial output, no temporary file")
    }

    func testConcurrentConversionsToOneTarget() throws {
        let dir = try CLI.temporaryDirectory()
        let out = store(dir, "t.gguf")
        func launch(_ type: String, force: Bool) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try CLI.binary)
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

    /// A sparse safetensors file holding a 1 GiB f32 tensor (zeros, no disk blocks) named `big`
    /// and a small one named `small`, recognised as a T5 encoder.
    private func sparseT5(_ path: String, big: String, small: String) throws {
        let bigBytes = 32768 * 8192 * 4, smallBytes = 64 * 8192 * 4
        var header = "{\"\(small)\":{\"dtype\":\"F32\",\"shape\":[64,8192],\"data_offsets\":[0,\(smallBytes)]},"
            + "\"\(big)\":{\"dtype\":\"F32\",\"shape\":[32768,8192],\"data_offsets\":[\(smallBytes),\(smallBytes + bigBytes)]}}"
        while header.utf8.count % 8 != 0 { header += " " }
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { [UInt8]($0) }
        bytes += Array(header.utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        XCTAssertEqual(truncate(path, off_t(bytes.count + smallBytes + bigBytes)), 0)
    }

    /// Case 64 of the bad-input corpus (`formats/hostile-inputs.md`): another process truncates
    /// the input while it is converted. Whether the lost bytes are read by pixconv itself (SIGBUS,
    /// q8_0 quantization) or handed to write(2) (EFAULT, an f32 tensor copied as is), the result
    /// is exit status 1 and one line naming the input file, with no output and no temporary file
    /// left.
    func testInputTruncatedDuringConversionIsAnErrorAndLeavesNothing() throws {
        let dir = try CLI.temporaryDirectory()
        let q = "encoder.block.0.layer.0.SelfAttention.q.weight"
        for (type, big, small) in [("q8_0", q, "shared.weight"), ("f16", "shared.weight", q)] {
            let input = dir + "/in-\(type).safetensors", out = store(dir, "t.gguf")
            var interrupted = false
            // The truncation must land while pixconv reads tensor data: later if pixconv had not
            // got there yet (it then refuses the short file at open), earlier if it had finished.
            var delay = 0.3
            for _ in 0..<8 where !interrupted {
                try? FileManager.default.removeItem(atPath: out)
                try sparseT5(input, big: big, small: small)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: try CLI.binary)
                process.arguments = ["convert", input, "-o", out, "--type", type]
                let err = Pipe()
                process.standardError = err
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                Thread.sleep(forTimeInterval: delay)
                let stillRunning = process.isRunning
                XCTAssertEqual(truncate(input, 100_000), 0)
                let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                XCTAssertEqual(process.terminationReason, .exit, "never a signal: \(message)")
                XCTAssertTrue(process.terminationStatus == 0 || process.terminationStatus == 1, message)
                XCTAssertLessThanOrEqual(message.split(separator: "\n").count, 1, message)
                let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix("in-") }
                XCTAssertEqual(left, process.terminationStatus == 0 ? ["t.gguf"] : [], "no partial output, no temporary file")
                if !stillRunning || process.terminationStatus == 0 {
                    delay /= 3  // finished first
                } else if message.contains("file changed while being read") {
                    interrupted = true
                    XCTAssertEqual(process.terminationStatus, 1, message)
                    XCTAssertTrue(message.contains(input), message)
                } else {
                    delay *= 2  // truncated before pixconv mapped it: refused at open ("file truncated")
                    XCTAssertTrue(message.contains("truncated"), message)
                }
            }
            XCTAssertTrue(interrupted, "\(type): no truncation landed while the data was being read")
        }
    }

    /// Every file under `folder`, as paths relative to it (hidden files included).
    private func files(under folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder + "/" + $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    /// Case 64 for the commands that only read a store: another process truncates the mapped
    /// store while `generate` or `verify --reference` computes with its weights (the q8_0 linear
    /// layers read their blocks from the mapping at every step). The result is exit status 1 and
    /// one line naming the store, never a signal; `generate` leaves no image, and neither leaves a
    /// temporary file or a partial PNG (verify's diffs of the cases finished before the
    /// truncation stay, each complete).
    func testStoreTruncatedWhileMappedUnderGenerateAndVerifyIsAnError() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pristine = dir + "/pristine.gguf"
        let converted = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", pristine, "--type", "q8_0"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        let commands: [(name: String, arguments: (_ store: String, _ out: String) -> [String])] = [
            // 128×128 for 30 steps: about 2.5 s of steps in a debug build, one thread.
            ("generate", { store, out in
                ["generate", "--model", store, "--prompt", "a cat", "--steps", "30", "--height", "128", "--width", "128",
                 "--threads", "1", "-o", out + "/image.png"]
            }),
            // The four cases of reference-512, each generated again: about 2 s in a debug build.
            ("verify", { store, out in
                ["verify", "--model", store, "--reference", CLI.fixture("reference-512"), "--save-diff", out + "/diffs"]
            }),
        ]
        for (name, arguments) in commands {
            var interrupted = false
            // The truncation must land while the weights are in use: later if pixconv had not
            // opened the store yet (it then refuses the short file), earlier if it had finished.
            var delay = 0.4
            for attempt in 0..<8 where !interrupted {
                let work = dir + "/\(name)-\(attempt)", out = work + "/out", store = work + "/t.gguf"
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: pristine, toPath: store)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: try CLI.binary)
                process.arguments = arguments(store, out)
                let err = Pipe()
                process.standardError = err
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                Thread.sleep(forTimeInterval: delay)
                let stillRunning = process.isRunning
                XCTAssertEqual(truncate(store, 100_000), 0)
                let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                XCTAssertEqual(process.terminationReason, .exit, "\(name): never a signal: \(message)")
                XCTAssertTrue(process.terminationStatus == 0 || process.terminationStatus == 1, "\(name): \(message)")
                XCTAssertLessThanOrEqual(message.split(separator: "\n").count, 1, "\(name): \(message)")
                // Nothing half-written: no temporary file, and what is there is a whole PNG.
                let left = files(under: out)
                XCTAssertEqual(left.filter { $0.hasSuffix(".tmp") }, [], "\(name): no temporary file")
                for file in left { XCTAssertNoThrow(try PNGImage.read(path: out + "/" + file), "\(name): \(file)") }
                if name == "generate" {
                    XCTAssertEqual(left, process.terminationStatus == 0 ? ["image.png"] : [], "\(name): \(message)")
                }
                if !stillRunning || process.terminationStatus == 0 {
                    delay /= 3  // finished first
                } else if message.contains("file changed while being read") {
                    interrupted = true
                    XCTAssertEqual(process.terminationStatus, 1, message)
                    XCTAssertTrue(message.hasPrefix("pixconv: \(store): file changed while being read"), message)
                } else {
                    delay *= 2  // truncated before pixconv mapped it: refused at open
                    XCTAssertEqual(process.terminationStatus, 1, message)
                    XCTAssertTrue(message.contains(store), message)
                }
            }
            XCTAssertTrue(interrupted, "\(name): no truncation landed while the store was in use")
        }
    }
}
