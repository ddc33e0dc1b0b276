import Foundation
import XCTest

/// Reliability property 3 of `formats/hostile-inputs.md`: the system calls of a conversion,
/// recorded with strace, come in the order that makes the output durable and atomic:
/// open(temporary, O_EXCL) → fallocate → writes → fsync(temporary) → link/rename onto the
/// target → fsync(folder); the target name itself is never opened for writing. Skipped where strace is missing or may not trace (containers
/// without ptrace); `scripts/deps.sh --test` installs it.
final class DurabilityOrderTests: XCTestCase {
    /// One system call: the thread, the call's name, its argument text and its result.
    private struct Call {
        var pid: String
        var name: String
        var arguments: String
        var result: String
    }

    /// Runs `pixconv ARGS` under strace and returns its calls, joining "<unfinished ...>" halves.
    private func trace(_ arguments: [String]) throws -> [Call] {
        guard let strace = ["/usr/bin/strace", "/bin/strace"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("strace is not installed (scripts/deps.sh --test installs it)")
        }
        let log = NSTemporaryDirectory() + "pixconv-strace-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        // LeakSanitizer cannot run under ptrace; in an ASan build the traced pixconv skips it.
        var environment = ProcessInfo.processInfo.environment
        environment["ASAN_OPTIONS"] = (environment["ASAN_OPTIONS"].map { $0 + ":" } ?? "") + "detect_leaks=0"
        let result = try CLI.run(["-f", "-qq", "-s", "4096", "-o", log, "-e",
                                  "trace=openat,open,creat,write,pwrite64,fallocate,fsync,fdatasync,ftruncate,close,rename,renameat,renameat2,link,linkat",
                                  CLI.binary] + arguments, executable: strace, environment: environment)
        // strace's own refusal (a container without ptrace): "PTRACE_TRACEME: Operation not permitted".
        if result.status != 0, result.stderr.contains("PTRACE_") || result.stderr.contains("Operation not permitted") {
            throw XCTSkip("strace may not trace here: \(result.stderr)")
        }
        XCTAssertEqual(result.status, 0, result.stderr)
        var calls: [Call] = []
        var pending: [String: String] = [:]  // pid → first half of an unfinished call
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init) {
            guard let space = line.firstIndex(of: " ") else { continue }
            let pid = String(line[..<space])
            var text = String(line[line.index(after: space)...].drop { $0 == " " })  // pids are padded
            if text.hasSuffix("<unfinished ...>") {
                pending[pid] = String(text.dropLast("<unfinished ...>".count))
                continue
            }
            if text.hasPrefix("<... "), let resumed = text.range(of: " resumed>") {
                text = (pending.removeValue(forKey: pid) ?? "") + text[resumed.upperBound...]
            }
            // NAME(ARGUMENTS)<padding> = RESULT
            guard let open = text.firstIndex(of: "("), let equals = text.range(of: " = ", options: .backwards),
                  let close = text[..<equals.lowerBound].lastIndex(of: ")"), open < close else { continue }
            let result = text[equals.upperBound...].split(separator: " ").first.map(String.init) ?? ""
            calls.append(Call(pid: pid, name: String(text[..<open]), arguments: String(text[text.index(after: open)..<close]),
                              result: result))
        }
        return calls
    }

    private func firstIndex(_ calls: [Call], after start: Int = 0, _ match: (Call) -> Bool) -> Int? {
        calls.indices.first { $0 >= start && match(calls[$0]) }
    }

    /// Checks the order for one output `target`; `publish` is "link" (new target) or "rename" (--force).
    private func checkOrder(_ calls: [Call], target: String, publish: String) throws {
        let folder = (target as NSString).deletingLastPathComponent
        let base = (target as NSString).lastPathComponent
        let tmpPrefix = "\"\(folder)/.\(base).pixconv-"
        // The target is never opened for writing (it only appears through link/rename).
        for c in calls where c.name == "openat" || c.name == "open" || c.name == "creat" {
            if c.arguments.contains("\"\(target)\"") {
                XCTAssertFalse(c.arguments.contains("O_WRONLY") || c.arguments.contains("O_RDWR") || c.arguments.contains("O_CREAT"),
                               "target opened for writing: \(c.arguments)")
            }
        }
        let open = try XCTUnwrap(firstIndex(calls) { $0.name == "openat" && $0.arguments.contains(tmpPrefix) },
                                 "no temporary file opened; calls naming the folder: "
                                    + calls.filter { $0.arguments.contains(folder) }.prefix(8).map { "\($0)" }.joined(separator: " | "))
        XCTAssertTrue(calls[open].arguments.contains("O_EXCL"), calls[open].arguments)
        let fd = try XCTUnwrap(Int(calls[open].result), "open failed: \(calls[open].result)")
        let onFD = { (c: Call) in c.arguments.hasPrefix("\(fd),") || c.arguments == "\(fd)" }
        let close = try XCTUnwrap(firstIndex(calls, after: open + 1) { $0.name == "close" && onFD($0) }, "temporary file never closed")
        let between = calls[(open + 1)..<close].filter(onFD)
        let names = between.map(\.name)
        let fallocate = try XCTUnwrap(names.firstIndex(of: "fallocate"), "no preallocation: \(names)")
        let firstWrite = try XCTUnwrap(names.firstIndex { $0 == "write" || $0 == "pwrite64" }, "no write: \(names)")
        let lastWrite = try XCTUnwrap(names.lastIndex { $0 == "write" || $0 == "pwrite64" || $0 == "ftruncate" })
        let fsync = try XCTUnwrap(names.lastIndex(of: "fsync"), "temporary file never fsync'ed: \(names)")
        XCTAssertLessThan(fallocate, firstWrite, "preallocation before the first write: \(names)")
        XCTAssertLessThan(lastWrite, fsync, "fsync after the last write: \(names)")
        XCTAssertTrue(between.allSatisfy { $0.result == "0" || Int($0.result).map { $0 > 0 } == true }, "a failed call: \(between)")
        let published = try XCTUnwrap(firstIndex(calls, after: close) { $0.name.hasPrefix(publish) && $0.arguments.contains(tmpPrefix) },
                                      "no \(publish) of the temporary file")
        XCTAssertTrue(calls[published].arguments.hasSuffix("\"\(target)\"") || calls[published].arguments.contains("\"\(target)\","),
                      calls[published].arguments)
        XCTAssertEqual(calls[published].result, "0")
        let dir = try XCTUnwrap(firstIndex(calls, after: published) {
            $0.name == "openat" && $0.arguments.contains("\"\(folder)\"") && $0.arguments.contains("O_DIRECTORY")
        }, "folder never opened after publishing")
        let dirFD = try XCTUnwrap(Int(calls[dir].result))
        XCTAssertNotNil(firstIndex(calls, after: dir) { $0.name == "fsync" && $0.arguments == "\(dirFD)" && $0.result == "0" },
                        "folder never fsync'ed after publishing")
    }

    func testConversionIsWrittenInDurableOrder() throws {
        let dir = try CLI.temporaryDirectory()
        let out = dir + "/t.gguf"
        let fresh = try trace(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", "q8_0"])
        try checkOrder(fresh, target: out, publish: "link")
        let replaced = try trace(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", "f16", "--force"])
        try checkOrder(replaced, target: out, publish: "rename")
    }

    func testGeneratedImageIsWrittenInDurableOrder() throws {
        let dir = try CLI.temporaryDirectory()
        let store = dir + "/t.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "f16"]).status, 0)
        let png = dir + "/img.png"
        let calls = try trace(["generate", "--model", store, "--prompt", "a cat", "--steps", "2", "-o", png])
        try checkOrder(calls, target: png, publish: "rename")
    }
}
