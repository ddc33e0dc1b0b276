import Foundation

/// Runs `pixconv` with a watchdog, so a case that blocks (a FIFO) or loops fails instead of
/// hanging the suite, and tells a signal from an exit status.
struct CorpusRun {
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String

    /// Non-empty stderr lines.
    var errorLines: [Substring] { stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty } }

    var summary: String {
        let how = timedOut ? "timed out" : signaled ? "killed by signal \(status)" : "exit \(status)"
        return "\(how); stderr: \(stderr.prefix(600))"
    }
}

enum CorpusRunner {
    static func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> CorpusRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CLI.binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let done = DispatchSemaphore(value: 0)
        let timedOut = LockedFlag()
        let pid = process.processIdentifier
        DispatchQueue.global().async {
            if done.wait(timeout: .now() + timeout) == .timedOut {
                timedOut.set()
                kill(pid, SIGKILL)
            }
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        done.signal()
        return CorpusRun(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                         timedOut: timedOut.value, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }
}

final class LockedFlag: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}
