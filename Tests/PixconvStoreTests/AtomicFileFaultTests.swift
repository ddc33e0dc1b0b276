import Foundation
import PixconvCore
import XCTest

/// Fault injection into `AtomicFile`, the writer behind every file pixconv writes (stores,
/// safetensors, PNGs): reliability property 2 of `formats/hostile-inputs.md` — ENOSPC and EIO at
/// the Nth write, short writes, EINTR, EIO from fsync, ENOSPC from preallocation. Whatever fails, the target is absent (or, when
/// replacing, byte-identical to the old one) and no temporary file is left.
final class AtomicFileFaultTests: XCTestCase {
    /// Counts calls and fails the chosen ones; thread-safe because the closures are `@Sendable`.
    private final class Faults: @unchecked Sendable {
        private let lock = NSLock()
        var failWrite: (call: Int, errno: Int32)?
        var failFsync: Int32?
        var failFallocate: Int32?
        var shortWrites: Int?  // at most this many bytes per write/pwrite
        var interruptEvery: Int?  // every k-th write/pwrite call fails with EINTR first
        private(set) var writes = 0
        private var calls = 0

        /// Returns the error to inject into this write call, or the byte limit for it.
        func nextWrite(_ count: Int) -> (errno: Int32?, count: Int) {
            lock.lock()
            defer { lock.unlock() }
            calls += 1
            if let k = interruptEvery, calls % k == 0 { return (EINTR, 0) }
            writes += 1
            if let f = failWrite, writes == f.call { return (f.errno, 0) }
            return (nil, min(count, shortWrites ?? count))
        }

        var calls_: AtomicFile.SystemCalls {
            AtomicFile.SystemCalls(
                write: { fd, p, n in
                    let (e, limit) = self.nextWrite(n)
                    if let e { errno = e; return -1 }
                    return AtomicFile.SystemCalls.system.write(fd, p, limit)
                },
                pwrite: { fd, p, n, at in
                    let (e, limit) = self.nextWrite(n)
                    if let e { errno = e; return -1 }
                    return AtomicFile.SystemCalls.system.pwrite(fd, p, limit, at)
                },
                fallocate: { fd, size in self.failFallocate ?? AtomicFile.SystemCalls.system.fallocate(fd, size) },
                fsync: { fd in
                    if let e = self.failFsync { errno = e; return -1 }
                    return AtomicFile.SystemCalls.system.fsync(fd)
                }
            )
        }
    }

    /// Pieces written in this order: small ones are buffered, large ones written directly, so a
    /// file takes several write(2) calls; then the first 16 bytes are overwritten (a header).
    private let pieces: [[UInt8]] = [
        [UInt8](repeating: 1, count: 100),
        (0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) },
        (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 3) },
        [UInt8](repeating: 9, count: 10),
    ]
    private let header = [UInt8](repeating: 0xAB, count: 16)

    private var expected: [UInt8] { header + Array(pieces.joined().dropFirst(header.count)) }

    private func write(_ path: String, replace: Bool, faults: Faults) throws {
        let size = pieces.reduce(0) { $0 + $1.count }
        let file = try AtomicFile(path: path, replace: replace, expectedSize: size, calls: faults.calls_)
        for piece in pieces { try file.write(piece) }
        try file.overwrite(header, at: 0)
        try file.commit()
    }

    private func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "pixconv-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func listing(_ dir: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir).sorted() }

    func testWritesAreCountedAndTheFileIsExact() throws {
        let dir = try folder()
        let faults = Faults()
        try write(dir + "/t.bin", replace: false, faults: faults)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/t.bin"))), expected)
        XCTAssertEqual(try listing(dir), ["t.bin"])
        XCTAssertGreaterThanOrEqual(faults.writes, 4, "the fault tests below need several write calls")
    }

    func testFailedWriteAtEveryCallLeavesNothing() throws {
        let total = try { () throws -> Int in
            let faults = Faults()
            try write(try folder() + "/t.bin", replace: false, faults: faults)
            return faults.writes
        }()
        for e in [ENOSPC, EIO, EDQUOT] {
            for call in 1...total {
                let dir = try folder()
                let faults = Faults()
                faults.failWrite = (call, e)
                XCTAssertThrowsError(try write(dir + "/t.bin", replace: false, faults: faults)) { error in
                    XCTAssertEqual(error as? FileError, .write(path: dir + "/t.bin", errno: e), "write \(call)")
                    XCTAssertTrue("\(error)".contains(String(cString: strerror(e))), "\(error)")
                }
                XCTAssertEqual(try listing(dir), [], "errno \(e) at write \(call): no target, no temporary file")
            }
        }
    }

    func testFailedWriteWhileReplacingKeepsTheOldFile() throws {
        let dir = try folder()
        let target = dir + "/t.bin"
        let old: [UInt8] = Array("the previous store".utf8)
        try AtomicFile.write(old, to: target)
        for call in 1...4 {
            let faults = Faults()
            faults.failWrite = (call, ENOSPC)
            XCTAssertThrowsError(try write(target, replace: true, faults: faults))
            XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), old)
            XCTAssertEqual(try listing(dir), ["t.bin"])
        }
    }

    func testShortWritesAndInterruptionsStillGiveTheExactFile() throws {
        for (short, interrupt) in [(4093, nil), (7, nil), (nil, 2), (1000, 3)] as [(Int?, Int?)] {
            let dir = try folder()
            let faults = Faults()
            faults.shortWrites = short
            faults.interruptEvery = interrupt
            try write(dir + "/t.bin", replace: false, faults: faults)
            XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/t.bin"))), expected,
                           "short \(String(describing: short)), EINTR every \(String(describing: interrupt))")
            XCTAssertEqual(try listing(dir), ["t.bin"])
        }
    }

    func testFsyncFailureIsFinalAndLeavesNothing() throws {
        let dir = try folder()
        let target = dir + "/t.bin"
        let faults = Faults()
        faults.failFsync = EIO
        XCTAssertThrowsError(try write(target, replace: false, faults: faults)) { error in
            XCTAssertEqual(error as? FileError, .write(path: target, errno: EIO))
        }
        XCTAssertEqual(try listing(dir), [])
        // Replacing: the old file stays.
        try AtomicFile.write([1, 2, 3], to: target)
        XCTAssertThrowsError(try write(target, replace: true, faults: faults))
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), [1, 2, 3])
        XCTAssertEqual(try listing(dir), ["t.bin"])
    }

    func testFullDiskAtPreallocationFailsBeforeWriting() throws {
        let dir = try folder()
        let faults = Faults()
        faults.failFallocate = ENOSPC
        XCTAssertThrowsError(try write(dir + "/t.bin", replace: false, faults: faults)) { error in
            XCTAssertEqual(error as? FileError, .write(path: dir + "/t.bin", errno: ENOSPC))
        }
        XCTAssertEqual(faults.writes, 0, "nothing is written when the space cannot be reserved")
        XCTAssertEqual(try listing(dir), [])
    }

    func testWriteThatMakesNoProgressIsAnError() throws {
        let dir = try folder()
        let faults = Faults()
        faults.shortWrites = 0
        XCTAssertThrowsError(try write(dir + "/t.bin", replace: false, faults: faults)) { error in
            XCTAssertEqual(error as? FileError, .write(path: dir + "/t.bin", errno: EIO))
        }
        XCTAssertEqual(try listing(dir), [])
    }
}
