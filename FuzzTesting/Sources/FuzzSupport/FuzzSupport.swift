#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CFuzzShim

/// The callback libFuzzer calls once per input (`LLVMFuzzerTestOneInput`'s signature).
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// Hands the process to libFuzzer (`LLVMFuzzerRunDriver`, compiler-rt `FuzzerDriver.cpp`) with the
/// command-line arguments; returns only through `exit`.
public func runFuzzer(_ callback: FuzzCallback) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// libFuzzer's input as a buffer (its own heap copy, so ASan sees every overread).
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
    guard let data, size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: data, count: size)
}

/// Writes `bytes` to a per-process scratch file (on /dev/shm when it exists) and returns its path,
/// for readers that only open paths. The file is replaced on every call and removed at exit.
public func writeScratchFile(_ bytes: UnsafeRawBufferPointer, tag: String) -> String {
    let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let path = "\(folder)/pixconv-fuzz-\(tag)-\(getpid()).bin"
    if !scratchRegistered {
        scratchRegistered = true
        scratchPath = path
        atexit { if let p = scratchPath { unlink(p) } }
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("fuzz harness: cannot create \(path)") }  // harness fault, not an input fault
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        guard n > 0 else { fatalError("fuzz harness: cannot write \(path)") }
        done += n
    }
    close(fd)
    return path
}

nonisolated(unsafe) private var scratchRegistered = false
nonisolated(unsafe) private var scratchPath: String?

/// Touches every byte of `bytes` so ASan checks the whole range a reader handed out.
@inline(never)
public func fuzzTouch(_ bytes: UnsafeRawBufferPointer) -> UInt8 {
    var x: UInt8 = 0
    for b in bytes { x ^= b }
    return x
}
