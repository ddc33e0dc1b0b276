import Foundation
import PixconvCore
import PixconvTestSupport
import XCTest
@testable import PixconvReaders

/// Writes `bytes` to a fresh temporary file and returns its path.
func torchTestFile(_ bytes: [UInt8], _ name: String = "t.bin") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("pixconv-torch-test-\(UUID().uuidString)-\(name)").path
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// Runs `body` on a temporary file holding `bytes`, removed afterwards (a mapping outlives the name).
func torchWithTestFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) rethrows -> T {
    let path = torchTestFile(bytes)
    defer { unlink(path) }
    return try body(path)
}

func torchTestArchive(_ bytes: [UInt8]) throws -> ZipArchive {
    try torchWithTestFile(bytes) { try ZipArchive(path: $0) }
}

final class ZipArchiveTests: XCTestCase {
    /// Raw deflate of "hello hello hello hello pixconv" and its CRC, from Python's zlib.
    let helloDeflated: [UInt8] = [203, 72, 205, 201, 201, 87, 200, 192, 32, 11, 50, 43, 146, 243, 243, 202, 0]
    let hello = Array("hello hello hello hello pixconv".utf8)
    let helloCRC: UInt32 = 0xC70A_7E89

    func expectZipError(_ bytes: [UInt8], _ check: (ZipError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let archive = try torchTestArchive(bytes)
            for entry in archive.entries { _ = try archive.read(entry) }
            XCTFail("accepted a bad archive", file: file, line: line)
        } catch let error as ZipError {
            XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
        }
    }

    func testStoredAndDeflatedEntries() throws {
        for zip64 in [false, true] {
            for prefix in [[UInt8](), [UInt8](repeating: 0x41, count: 100)] {
                var z = TestZip(zip64: zip64, prefix: prefix)
                z.items = [
                    .init(name: "a/one", data: [1, 2, 3]),
                    .init(name: "a/hello", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC),
                    .init(name: "a/empty", data: []),
                ]
                let archive = try torchTestArchive(z.build())
                XCTAssertEqual(archive.prefixLength, prefix.count)
                XCTAssertEqual(archive.entries.map(\.name), ["a/one", "a/hello", "a/empty"])
                let one = try archive.read(XCTUnwrap(archive.entry(named: "a/one")))
                XCTAssertEqual(one.withBytes { Array($0) }, [1, 2, 3])
                XCTAssertTrue(one.owner === archive.file, "stored records are slices of the mapping")
                let h = try archive.read(XCTUnwrap(archive.entry(named: "a/hello")))
                XCTAssertEqual(h.withBytes { Array($0) }, hello)
                XCTAssertEqual(try archive.read(XCTUnwrap(archive.entry(named: "a/empty"))).bytes.count, 0)
            }
        }
    }

    /// Entries past 4 GiB keep their sizes and offset in a ZIP64 extra field (as miniz writes them).
    func testZip64ExtraFields() throws {
        var z = TestZip(zip64: true)
        z.items = [.init(name: "a/one", data: [1, 2, 3], zip64Extra: true),
                   .init(name: "a/hello", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC, zip64Extra: true)]
        let archive = try torchTestArchive(z.build())
        XCTAssertEqual(archive.entries.map(\.uncompressedSize), [3, hello.count])
        XCTAssertEqual(try archive.read(archive.entries[1]).withBytes { Array($0) }, hello)
        // The extra field is shorter than the escaped values need.
        var bytes = z.build()
        let cd = bytes.count - 22 - 20 - 56 - 2 * (46 + 24 + 4)
        let nameLength = Int(bytes[cd + 28])
        bytes[cd + 46 + nameLength + 2] = 16  // zip64 extra length 24 → 16 (offset missing)
        XCTAssertThrowsError(try torchTestArchive(bytes))
    }

    func testDeflatedDeclaredSizeLies() throws {
        // Declared smaller than the data inflates to, larger, and absurdly large (refused before allocating).
        for (declared, phrase) in [(10, "more than"), (40, "inflates to 31")] {
            var z = TestZip()
            z.items = [.init(name: "a/x", data: helloDeflated, method: 8, uncompressedSize: declared, crc: helloCRC)]
            let archive = try torchTestArchive(z.build())
            XCTAssertThrowsError(try archive.read(archive.entries[0])) { error in
                XCTAssertTrue("\(error)".contains(phrase), "\(error)")
            }
        }
        // A declared size within the ratio bound but above the caller's limit.
        var z = TestZip()
        z.items = [.init(name: "a/x", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC)]
        let archive = try torchTestArchive(z.build())
        XCTAssertThrowsError(try archive.read(archive.entries[0], limit: 8)) { error in
            XCTAssertEqual(error as? ZipError, .tooLarge(name: "a/x", declared: hello.count, limit: 8))
        }
        // Truncated stream.
        var t = TestZip()
        t.items = [.init(name: "a/x", data: Array(helloDeflated.prefix(8)), method: 8, uncompressedSize: hello.count, crc: helloCRC)]
        let truncated = try torchTestArchive(t.build())
        XCTAssertThrowsError(try truncated.read(truncated.entries[0]))
    }

    func testHugeDeclaredSizeRefusedBeforeAllocating() throws {
        var z = TestZip()
        z.items = [.init(name: "a/x", data: helloDeflated, method: 8, uncompressedSize: 0xFFFF_FFF0, crc: helloCRC)]
        let archive = try torchTestArchive(z.build())
        XCTAssertThrowsError(try archive.read(archive.entries[0])) { error in
            guard case .tooLarge(name: "a/x", declared: 0xFFFF_FFF0, limit: _)? = error as? ZipError else {
                return XCTFail("\(error)")
            }
        }
    }

    func testCRCMismatch() {
        var z = TestZip()
        z.items = [.init(name: "a/x", data: [1, 2, 3], crc: 0x1234)]
        expectZipError(z.build()) { $0 == .crcMismatch(name: "a/x", expected: 0x1234, actual: PixconvCore.crc32([1, 2, 3])) }
        var d = TestZip()
        d.items = [.init(name: "a/x", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC ^ 1)]
        expectZipError(d.build()) { if case .crcMismatch = $0 { return true } else { return false } }
    }

    func testBadNames() {
        for name in ["../evil", "/abs", "a/../x", "a\\b", "a\u{0}b", "a//b", "./a", "a/./b", "C:/x", "a/.."] {
            var z = TestZip()
            z.items = [.init(name: name, data: [1])]
            expectZipError(z.build()) { $0 == .badName(name) }
        }
        var empty = TestZip()
        empty.items = [.init(name: "", data: [1])]
        expectZipError(empty.build()) { $0 == .badName("") }
        // A directory entry with content.
        var dir = TestZip()
        dir.items = [.init(name: "a/data/", data: [1])]
        expectZipError(dir.build()) { $0 == .badName("a/data/") }
    }

    func testDuplicateNames() {
        var z = TestZip()
        z.items = [.init(name: "a/data.pkl", data: [1]), .init(name: "a/data.pkl", data: [2])]
        expectZipError(z.build()) { $0 == .duplicateName("a/data.pkl") }
    }

    func testLocalNameMustMatchCentralName() {
        var z = TestZip()
        z.items = [.init(name: "archive/data.pkl", data: [1], localName: "archive/datp.pkl")]
        expectZipError(z.build()) { if case .badLocalHeader(name: "archive/data.pkl", offset: 0, reason: _) = $0 { true } else { false } }
    }

    func testFlagsAndMethods() {
        for flags: UInt16 in [0x1, 0x20, 0x40, 0x2] {
            var z = TestZip()
            z.items = [.init(name: "a/x", data: [1], flags: flags)]
            expectZipError(z.build()) { $0 == .unsupportedFlags(name: "a/x", flags: flags) }
        }
        for method: UInt16 in [12, 99, 14] {
            var z = TestZip()
            z.items = [.init(name: "a/x", data: [1], method: method)]
            expectZipError(z.build()) { $0 == .unsupportedMethod(name: "a/x", method: method) }
        }
        var ok = TestZip()
        ok.items = [.init(name: "a/x", data: [1], flags: 0x800)]
        XCTAssertNoThrow(try torchTestArchive(ok.build()))
    }

    func testOverlappingAndOutOfBoundsEntries() {
        // Entry a claims 40 stored bytes, running over b's local header.
        var z = TestZip()
        z.items = [.init(name: "a/a", data: [UInt8](repeating: 7, count: 4), uncompressedSize: 40, compressedSize: 40),
                   .init(name: "a/b", data: [UInt8](repeating: 8, count: 40))]
        expectZipError(z.build()) { $0 == .overlappingEntries("a/a", "a/b") }
        // Two central entries sharing one local header (different names fail the name check first).
        var s = TestZip()
        s.items = [.init(name: "a/a", data: [1]), .init(name: "a/b", data: [1], localOffset: 0)]
        expectZipError(s.build()) { if case .badLocalHeader = $0 { true } else { false } }
        // Data running into the central directory / past the end.
        var p = TestZip()
        p.items = [.init(name: "a/a", data: [1, 2], uncompressedSize: 1 << 30, compressedSize: 1 << 30)]
        expectZipError(p.build()) { $0 == .entryPastEnd(name: "a/a") }
        var q = TestZip()
        q.items = [.init(name: "a/a", data: [1], localOffset: 0x7FFF_0000)]
        expectZipError(q.build()) { $0 == .entryPastEnd(name: "a/a") }
    }

    func testCountsMustAgree() {
        for delta in [1, -1] {
            var z = TestZip(countDelta: delta)
            z.items = [.init(name: "a/a", data: [1]), .init(name: "a/b", data: [2])]
            expectZipError(z.build()) {
                switch $0 {
                case .countMismatch, .badCentralEntry: return true
                default: return false
                }
            }
        }
    }

    func testEndRecordRules() {
        var z = TestZip()
        z.items = [.init(name: "a/a", data: [1])]
        let good = z.build()
        expectZipError([]) { $0 == .noEndRecord }
        expectZipError([UInt8](repeating: 0, count: 100)) { $0 == .noEndRecord }
        expectZipError(good + [0, 0, 0]) { $0 == .trailingBytes(count: 3) }
        // Two archives back to back: the first one would be read as the second one's prefix.
        var second = TestZip()
        second.items = [.init(name: "b/b", data: [2])]
        expectZipError(good + second.build()) { $0 == .twoEndRecords(offset: good.count - 22) }
        var c = z
        c.comment = Array("hi".utf8)
        expectZipError(c.build()) { $0 == .commentNotAllowed(length: 2) }
    }

    /// Every prefix of a valid archive must be refused cleanly (no trap, no read past the end).
    func testTruncatedArchivesNeverCrash() throws {
        var z = TestZip(zip64: true)
        z.items = [.init(name: "a/one", data: [1, 2, 3]),
                   .init(name: "a/hello", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC)]
        let bytes = z.build()
        XCTAssertNoThrow(try torchTestArchive(bytes))
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try torchTestArchive(Array(bytes.prefix(n))), "prefix \(n)")
        }
    }

    /// Flipping any single byte must give an archive that is refused or reads consistently.
    func testSingleByteCorruptionsNeverCrash() throws {
        var z = TestZip(zip64: true)
        z.items = [.init(name: "a/one", data: [1, 2, 3]),
                   .init(name: "a/hello", data: helloDeflated, method: 8, uncompressedSize: hello.count, crc: helloCRC)]
        let bytes = z.build()
        for i in bytes.indices {
            var bad = bytes
            bad[i] ^= 0xFF
            if let archive = try? torchTestArchive(bad) {
                for entry in archive.entries { _ = try? archive.read(entry) }
            }
        }
    }
}
