import Foundation
import XCTest
import PixconvCore
import PixconvQuant
import PixconvTestSupport
@testable import PixconvStore

final class GGUFHostileTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "pixconv-hostile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    private func open(_ bytes: [UInt8], _ name: String = "t.gguf") throws -> GGUFFile {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try GGUFFile(path: path)
    }

    /// Opens `bytes` and returns the error (failing the test when it opens).
    private func rejection(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> StoreError? {
        do {
            _ = try open(bytes)
            XCTFail("hostile file was accepted", file: file, line: line)
            return nil
        } catch let e as StoreError {
            return e
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    /// A valid file: two KVs, an F32 [2,3] tensor and a Q8_0 [1,32] tensor, alignment 32.
    private func validFile(alignment: UInt32? = nil) -> [UInt8] {
        var g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 2, kvs: alignment == nil ? 1 : 2)
        g.kvString("general.architecture", "pixart")
        if let a = alignment { g.kvU32("general.alignment", a) }
        g.info("a", dims: [3, 2], type: 0, offset: 0)
        g.info("b", dims: [32, 1], type: 8, offset: UInt64(alignment ?? 32))
        g.pad(Int(alignment ?? 32))
        g.data(24)
        g.pad(Int(alignment ?? 32))
        g.data(34)
        g.pad(Int(alignment ?? 32))
        return g.bytes
    }

    func testValidHandMadeFileOpens() throws {
        let f = try open(validFile())
        XCTAssertEqual(f.alignment, 32)  // default when the key is absent
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(f.tensors[0].shape, [2, 3])
        XCTAssertEqual(f.tensors[1].dtype, .Q8_0)
        XCTAssertEqual(try f.data(for: "b").bytes.count, 34)
        let g = try open(validFile(alignment: 64))
        XCTAssertEqual(g.alignment, 64)
        XCTAssertEqual(g.fileOffset(of: "a").map { $0 % 64 }, 0)
    }

    func testHeaderMagicAndVersion() {
        var bad = validFile()
        bad[0...3] = [0x46, 0x55, 0x47, 0x47]  // "FUGG"
        guard case .badMagic? = rejection(bad) else { return XCTFail("magic") }
        for v: UInt32 in [0, 1, 4] {
            var b = validFile()
            withUnsafeBytes(of: v.littleEndian) { b[4...7] = ArraySlice($0) }
            XCTAssertEqual(rejection(b), .unsupportedVersion(file: folder + "/t.gguf", version: v))
        }
        var swapped = validFile()
        swapped[4...7] = [0, 0, 0, 3]
        XCTAssertEqual(rejection(swapped), .bigEndian(file: folder + "/t.gguf"))
        guard case .truncated? = rejection([]) else { return XCTFail("empty file") }
        guard case .truncated? = rejection(Array("GGUF".utf8)) else { return XCTFail("4 bytes") }
    }

    func testCountsAreCheckedBeforeAllocating() {
        for (t, k): (UInt64, UInt64) in [(UInt64.max, 0), (0, 1 << 63), (0, 1 << 62), (1 << 40, 0)] {
            var g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: t, kvs: k)
            guard case .countTooLarge? = rejection(g.bytes) else { return XCTFail("counts \(t) \(k)") }
        }
    }

    func testStringsAndKeys() {
        var g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.u64(UInt64.max)
        g.data(16)
        guard case .badString? = rejection(g.bytes) else { return XCTFail("key length 2^64-1") }

        g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.u64(100)
        g.bytes += Array("short".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        guard case .badString? = rejection(g.bytes) else { return XCTFail("key past EOF") }

        for key in ["", "kéy", "a\u{1}b"] {
            g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: 0, kvs: 1)
            g.kvU32(key, 1)
            guard case .badKey? = rejection(g.bytes) else { return XCTFail("key '\(key)'") }
        }

        g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 2)
        g.kvU32("a.b", 1)
        g.kvString("a.b", "x")
        XCTAssertEqual(rejection(g.bytes), .duplicateKey(file: folder + "/t.gguf", key: "a.b", offset: 43))

        g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.str("k")
        g.u32(8)
        g.u64(2)
        g.bytes += [0xC3, 0x28]  // invalid UTF-8
        guard case .badString? = rejection(g.bytes) else { return XCTFail("invalid UTF-8 value") }
    }

    func testValueTypesBoolsAndArrays() {
        for t: UInt32 in [13, UInt32.max] {
            var g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: 0, kvs: 1)
            g.str("k")
            g.u32(t)
            g.data(8)
            guard case .badValueType? = rejection(g.bytes) else { return XCTFail("type \(t)") }
        }
        var g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.str("k")
        g.u32(7)
        g.u8(2)
        guard case .badBool(_, "k", 2, _)? = rejection(g.bytes) else { return XCTFail("bool 2") }

        g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.str("k")
        g.u32(9)
        g.u32(7)
        g.u64(3)
        g.bytes += [1, 0, 5]
        guard case .badBool(_, "k", 5, _)? = rejection(g.bytes) else { return XCTFail("bool array") }

        g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 0, kvs: 1)
        g.str("k")
        g.u32(9)
        g.u32(4)
        g.u64(1 << 62)
        g.data(8)
        guard case .countTooLarge? = rejection(g.bytes) else { return XCTFail("array count 2^62") }

        // Arrays nested 3 deep are read; 4 deep are rejected.
        func nested(_ depth: Int) -> [UInt8] {
            var n = TestGGUF(dataFill: 0x3F)
            n.header(tensors: 0, kvs: 1)
            n.str("k")
            n.u32(9)
            for _ in 1..<depth { n.u32(9); n.u64(1) }
            n.u32(4)
            n.u64(1)
            n.u32(7)
            return n.bytes
        }
        XCTAssertEqual(try open(nested(3)).value("k"), .array(.array([.array([.uint32([7])])])))
        guard case .arrayTooDeep? = rejection(nested(4)) else { return XCTFail("depth 4") }
    }

    func testAlignment() {
        func file(_ kv: (inout TestGGUF) -> Void) -> [UInt8] {
            var g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: 0, kvs: 1)
            kv(&g)
            return g.bytes
        }
        guard case .badAlignment? = rejection(file { $0.str("general.alignment"); $0.u32(5); $0.u32(64) }) else {
            return XCTFail("int32 alignment")
        }
        for a: UInt32 in [0, 3, 13, 1 << 31] {
            guard case .badAlignment? = rejection(file { $0.kvU32("general.alignment", a) }) else {
                return XCTFail("alignment \(a)")
            }
        }
    }

    func testTensorInfos() {
        func file(_ name: String = "t", dims: [UInt64] = [32, 2], type: UInt32 = 0, offset: UInt64 = 0,
                  twice: Bool = false, dataBytes: Int = 256) -> [UInt8] {
            var g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: twice ? 2 : 1, kvs: 0)
            g.info(name, dims: dims, type: type, offset: offset)
            if twice { g.info(name, dims: dims, type: type, offset: 256) }
            g.pad(32)
            g.data(twice ? 512 : dataBytes)
            return g.bytes
        }
        XCTAssertNoThrow(try open(file(String(repeating: "n", count: 63))))
        guard case .badTensorName? = rejection(file(String(repeating: "n", count: 64))) else { return XCTFail("64-byte name") }
        guard case .badTensorName? = rejection(file("")) else { return XCTFail("empty name") }
        guard case .duplicateTensor? = rejection(file(twice: true)) else { return XCTFail("duplicate") }
        guard case .badDimensions? = rejection(file(dims: [1, 1, 1, 1, 1])) else { return XCTFail("n_dims 5") }
        guard case .badDimensions? = rejection(file(dims: [UInt64.max])) else { return XCTFail("ne = -1") }
        guard case .badDimensions? = rejection(file(dims: [1 << 32, 1 << 32])) else { return XCTFail("count overflow") }
        guard case .sizeOverflow? = rejection(file(dims: [4, (1 << 30) - 1, (1 << 30) + 1, 1])) else {
            return XCTFail("F32 size wraps")
        }
        guard case .badDimensions? = rejection(file(dims: Array(repeating: 1, count: 9))) else { return XCTFail("n_dims 9") }
        // Q8_0 with 2^63 − 2^31 elements: the element count fits, its byte size (· 34/32) overflows
        // (CVE-2026-33298 class).
        guard case .sizeOverflow? = rejection(file(dims: [1 << 31, (1 << 32) - 1], type: 8)) else {
            return XCTFail("Q8_0 size overflow")
        }
        guard case .badTensorType(_, _, 42, _)? = rejection(file(type: 42)) else { return XCTFail("type 42") }
        guard case .badTensorType(_, _, 4, _)? = rejection(file(type: 4)) else { return XCTFail("removed type 4") }
        guard case .unsupportedTensorType(_, _, 12, _)? = rejection(file(type: 12)) else { return XCTFail("Q4_K") }
        guard case .badRowLength(_, _, 16, 32)? = rejection(file(dims: [16, 2], type: 8)) else { return XCTFail("row 16") }
        // A zero-sized tensor is accepted (no division by zero).
        let empty = try? open(file(dims: [0, 5], dataBytes: 0))
        XCTAssertEqual(empty?.tensors.first?.byteCount, 0)
    }

    func testOffsetsAndDataBounds() {
        func file(offsets: (UInt64, UInt64), dataBytes: Int = 64, tail: [UInt8] = []) -> [UInt8] {
            var g = TestGGUF(dataFill: 0x3F)
            g.header(tensors: 2, kvs: 0)
            g.info("a", dims: [5], type: 0, offset: offsets.0)  // 20 bytes, padded to 32
            g.info("b", dims: [8], type: 0, offset: offsets.1)  // 32 bytes
            g.pad(32)
            let dataStart = g.bytes.count
            g.data(20)
            g.pad(32)
            g.data(32)
            return Array(g.bytes[0..<dataStart + dataBytes]) + tail
        }
        XCTAssertNoThrow(try open(file(offsets: (0, 32))))
        guard case .badOffset(_, "b", 20, 32)? = rejection(file(offsets: (0, 20))) else { return XCTFail("unpadded") }
        guard case .badOffset(_, "b", 64, 32)? = rejection(file(offsets: (0, 64))) else { return XCTFail("gap") }
        guard case .badOffset(_, "a", 32, 0)? = rejection(file(offsets: (32, 0))) else { return XCTFail("order") }
        guard case .badOffset(_, "a", UInt64.max, 0)? = rejection(file(offsets: (UInt64.max, 0))) else {
            return XCTFail("2^64-1")
        }
        guard case .dataOutOfBounds(_, "b", _, _)? = rejection(file(offsets: (0, 32), dataBytes: 63)) else {
            return XCTFail("1 byte short")
        }
        guard case .dataOutOfBounds(_, "a", _, _)? = rejection(file(offsets: (0, 32), dataBytes: 8)) else {
            return XCTFail("data past EOF")
        }
        guard case .trailingBytes? = rejection(file(offsets: (0, 32), tail: [0])) else { return XCTFail("trailing") }
        // Two I8 tensors of 0x7FFFFFFFFFFFFFC0 bytes each (ggml DATA_MEM_SIZE_OVERFLOW).
        var g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 2, kvs: 0)
        g.info("a", dims: [0x7FFF_FFFF_FFFF_FFC0], type: 24, offset: 0)
        g.info("b", dims: [0x7FFF_FFFF_FFFF_FFC0], type: 24, offset: 0x7FFF_FFFF_FFFF_FFC0)
        g.pad(32)
        g.data(64)
        switch rejection(g.bytes) {
        case .dataOutOfBounds?, .sizeOverflow?: break
        case let e: XCTFail("huge I8 tensors: \(String(describing: e))")
        }
        var padded = file(offsets: (0, 32))
        padded[padded.count - 64 + 25] = 1  // inside tensor a's padding
        guard case .nonZeroPadding? = rejection(padded) else { return XCTFail("padding") }
    }

    /// Every prefix of a valid file, and the file with each byte inverted, is either rejected
    /// with a `StoreError` or opens; nothing traps.
    /// Deterministic random mutations (1–4 bytes set to random or boundary values, sometimes a
    /// truncation or an appended tail) of a valid file with every kind of KV: never a trap.
    func testRandomMutationsNeverTrap() throws {
        var g = TestGGUF(dataFill: 0x3F)
        g.header(tensors: 2, kvs: 4)
        g.kvString("general.architecture", "pixart")
        g.kvU32("general.alignment", 32)
        g.str("a.strings"); g.u32(9); g.u32(8); g.u64(2); g.str("xy"); g.str("")
        g.str("a.nested"); g.u32(9); g.u32(9); g.u64(1); g.u32(7); g.u64(2); g.u8(1); g.u8(0)
        g.info("w", dims: [32, 2], type: 8, offset: 0)
        g.info("v", dims: [3], type: 1, offset: 96)
        g.pad(32)
        g.data(68)
        g.pad(32)
        g.data(6)
        g.pad(32)
        let valid = g.bytes
        XCTAssertNoThrow(try open(valid))
        let path = folder + "/mutant.gguf"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(truncatingIfNeeded: state >> 1)
        }
        let boundary: [UInt8] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x40]
        var opened = 0
        for _ in 0..<1500 {
            var b = valid
            for _ in 0...(next() % 4) {
                let at = next() % b.count
                b[at] = next() % 2 == 0 ? boundary[next() % boundary.count] : UInt8(truncatingIfNeeded: next())
            }
            switch next() % 10 {
            case 0: b.removeLast(next() % b.count)
            case 1: b += [UInt8](repeating: 0, count: 1 + next() % 40)
            default: break
            }
            XCTAssertEqual(b.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }, b.count)
            XCTAssertEqual(ftruncate(fd, off_t(b.count)), 0)
            do {
                let f = try GGUFFile(path: path)
                for t in f.tensors { _ = try dequantizeToFloat(try f.data(for: t.name)) }
                opened += 1
            } catch is StoreError {
            } catch is QuantError {
                XCTFail("a validated tensor failed to decode")
            }
        }
        XCTAssertGreaterThan(opened, 0)  // some mutations only touch data
    }

    func testTruncationsAndByteFlipsNeverTrap() throws {
        let valid = validFile(alignment: 64)
        let path = folder + "/fuzz.gguf"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        func put(_ bytes: [UInt8]) {
            XCTAssertEqual(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }, bytes.count)
            XCTAssertEqual(ftruncate(fd, off_t(bytes.count)), 0)
        }
        for n in 0..<valid.count {
            put(Array(valid[0..<n]))
            XCTAssertThrowsError(try GGUFFile(path: path), "prefix \(n)")
        }
        var opened = 0
        for i in 0..<valid.count {
            var b = valid
            b[i] ^= 0xFF
            put(b)
            do {
                let f = try GGUFFile(path: path)
                for t in f.tensors { _ = try f.data(for: t.name) }
                opened += 1
            } catch is StoreError {
            }
        }
        XCTAssertLessThan(opened, valid.count / 2)  // most flips break the structure; data flips do not
    }
}
