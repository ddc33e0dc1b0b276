import Foundation
import PixconvCore
import XCTest

@testable import PixconvReaders

// MARK: - Helpers shared by the readers-st test files (prefixed `st` to stay unique in the target)

/// The package root, found from this file's path (Tests/PixconvReadersTests/<file>).
func stPackageRoot() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

func stFixture(_ relative: String) -> String { stPackageRoot() + "/fixtures/" + relative }

/// A fresh empty folder under the system temporary folder.
func stTemporaryFolder() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pixconv-st-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func stWrite(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// SHA-256 (FIPS 180-4), hex; a plain test-only implementation (swift-crypto is not available).
func stSHA256Hex(_ message: UnsafeRawBufferPointer) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var tail = [UInt8](message[(message.count / 64 * 64)...])
    tail.append(0x80)
    while tail.count % 64 != 56 { tail.append(0) }
    let bits = UInt64(message.count) * 8
    for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    func block(_ byte: (Int) -> UInt8) {
        for t in 0..<16 {
            w[t] = UInt32(byte(4 * t)) << 24 | UInt32(byte(4 * t + 1)) << 16 | UInt32(byte(4 * t + 2)) << 8 | UInt32(byte(4 * t + 3))
        }
        for t in 16..<64 {
            let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
            let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for t in 0..<64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
    }
    for start in stride(from: 0, to: message.count / 64 * 64, by: 64) { block { message[start + $0] } }
    for start in stride(from: 0, to: tail.count, by: 64) { block { tail[start + $0] } }
    return h.map { String(format: "%08x", $0) }.joined()
}

/// A safetensors file's bytes: length prefix (the header's length unless given), header, data.
func stFileBytes(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

// MARK: - Tests

final class SafetensorsTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try stTemporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// Writes `bytes` to a file and opens it; returns the error, failing if it opened.
    func openError(_ bytes: [UInt8], limits: SafetensorsHeader.Limits = SafetensorsHeader.Limits(),
                   file: StaticString = #filePath, line: UInt = #line) throws -> ReaderError? {
        let path = folder + "/t.safetensors"
        try stWrite(bytes, to: path)
        do {
            _ = try SafetensorsFile(path: path, limits: limits)
            XCTFail("opened a bad file", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func open(_ bytes: [UInt8]) throws -> SafetensorsFile {
        let path = folder + "/ok-\(UUID().uuidString).safetensors"
        try stWrite(bytes, to: path)
        return try SafetensorsFile(path: path)
    }

    var p: String { folder + "/t.safetensors" }

    func testSHA256KnownVectors() {
        XCTAssertEqual(Array("abc".utf8).withUnsafeBytes(stSHA256Hex),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual([UInt8]().withUnsafeBytes(stSHA256Hex),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        XCTAssertEqual(long.withUnsafeBytes(stSHA256Hex), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    // MARK: Length prefix

    func testEmptyFileIsTooSmall() throws {
        XCTAssertEqual(try openError([]), .headerTooSmall(path: p, fileSize: 0))
    }

    func testSevenByteFileIsTooSmall() throws {
        XCTAssertEqual(try openError([2, 0, 0, 0, 0, 0, 0]), .headerTooSmall(path: p, fileSize: 7))
    }

    func testHeaderLengthBeyondFile() throws {
        let bytes = stFileBytes("{}", data: [UInt8](repeating: 0x20, count: 90), length: 1000)
        XCTAssertEqual(try openError(bytes), .headerPastEnd(path: p, length: 1000, fileSize: 100))
    }

    func testHugeHeaderLength() throws {
        XCTAssertEqual(try openError(stFileBytes("{}", length: UInt64.max)),
                       .headerTooLarge(path: p, length: UInt64.max, limit: 100_000_000))
        XCTAssertEqual(try openError(stFileBytes("{}", length: 100_000_001)),
                       .headerTooLarge(path: p, length: 100_000_001, limit: 100_000_000))
    }

    // MARK: Header text

    func testBrokenJSON() throws {
        guard case let .headerNotJSON(path, e)? = try openError(stFileBytes("{")) else { return XCTFail() }
        XCTAssertEqual(path, p)
        XCTAssertEqual(e, JSONError(kind: .unexpectedEnd, offset: 9))
        XCTAssertEqual(try openError(stFileBytes("[]")), .headerNotObject(path: p, offset: 8))
        XCTAssertEqual(try openError(stFileBytes("\"x\"")), .headerNotObject(path: p, offset: 8))
    }

    func testNonUTF8Header() throws {
        XCTAssertEqual(try openError([1, 0, 0, 0, 0, 0, 0, 0, 0xFF]), .headerNotUTF8(path: p, offset: 8))
        // An overlong "{" (C1 BD) and an encoded surrogate (ED A0 80) are not UTF-8 either.
        XCTAssertEqual(try openError([2, 0, 0, 0, 0, 0, 0, 0, 0xC1, 0xBD]), .headerNotUTF8(path: p, offset: 8))
        var surrogate = stFileBytes("{\"") + [0xED, 0xA0, 0x80] + Array("\":{}}".utf8)
        surrogate[0] = UInt8(surrogate.count - 8)
        XCTAssertEqual(try openError(surrogate), .headerNotUTF8(path: p, offset: 10))
    }

    func testByteOrderMarkRejected() throws {
        XCTAssertEqual(try openError(stFileBytes("\u{FEFF}{}")), .headerNotObject(path: p, offset: 8))
    }

    func testNulPaddingRejected() throws {
        guard case let .headerNotJSON(_, e)? = try openError(stFileBytes("{}\0\0")) else { return XCTFail() }
        XCTAssertEqual(e.kind, .trailingData)
        XCTAssertEqual(e.offset, 10)
    }

    func testLeadingAndTrailingWhitespaceAccepted() throws {
        let header = " \n\t {\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   \r\n "
        let f = try open(stFileBytes(header, data: [7, 9]))
        XCTAssertEqual(f.tensors, [TensorInfo(name: "a", dtype: .U8, shape: [2], byteCount: 2)])
        XCTAssertEqual(Array(try f.data(for: "a").bytes), [7, 9])
    }

    func testEmptyHeaderHasNoTensors() throws {
        let f = try open(stFileBytes("{}"))
        XCTAssertEqual(f.tensors, [])
        XCTAssertEqual(f.metadata, [:])
    }

    func testDeepNestingIsRejectedWithoutCrashing() throws {
        let depth = 200_000
        let header = "{\"__metadata__\":{\"x\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}}"
        guard case let .headerNotJSON(_, e)? = try openError(stFileBytes(header)) else { return XCTFail() }
        XCTAssertEqual(e.kind, .tooDeep(limit: 64))
    }

    // MARK: Entries

    func entry(_ name: String, _ dtype: String, _ shape: String, _ offsets: String) -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    func testUnknownDType() throws {
        for dtype in ["F128", "f32", "Q8_0", ""] {
            let bytes = stFileBytes("{" + entry("w", dtype, "[1]", "[0,4]") + "}", data: [0, 0, 0, 0])
            guard case let .unknownDType(_, tensor, name, offset)? = try openError(bytes) else { return XCTFail(dtype) }
            XCTAssertEqual([tensor, name], ["w", dtype])
            XCTAssertEqual(offset, 14)  // the "dtype" key inside the entry
        }
        let numeric = stFileBytes("{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,1]}}", data: [0])
        guard case .unknownDType(_, "w", "a number", _)? = try openError(numeric) else { return XCTFail() }
    }

    func testEveryDTypeIsRead() throws {
        let all: [(String, DType, Int)] = [
            ("F64", .F64, 8), ("F32", .F32, 4), ("F16", .F16, 2), ("BF16", .BF16, 2), ("I64", .I64, 8), ("I32", .I32, 4),
            ("I16", .I16, 2), ("I8", .I8, 1), ("U8", .U8, 1), ("BOOL", .BOOL, 1), ("U16", .U16, 2), ("U32", .U32, 4),
            ("U64", .U64, 8), ("F8_E4M3", .F8_E4M3, 1), ("F8_E5M2", .F8_E5M2, 1),
        ]
        var parts: [String] = []
        var offset = 0
        for (name, _, size) in all {
            parts.append(entry("t_" + name, name, "[3]", "[\(offset),\(offset + 3 * size)]"))
            offset += 3 * size
        }
        let f = try open(stFileBytes("{" + parts.joined(separator: ",") + "}", data: [UInt8](repeating: 1, count: offset)))
        for (name, dtype, size) in all {
            XCTAssertEqual(f.info(named: "t_" + name), TensorInfo(name: "t_" + name, dtype: dtype, shape: [3], byteCount: 3 * size))
        }
    }

    func testMetadataMustBeStrings() throws {
        let one = stFileBytes("{\"__metadata__\":{\"ok\":\"x\",\"k\":1}}")
        XCTAssertEqual(try openError(one), .metadataNotString(path: p, key: "k", offset: 34))
        XCTAssertEqual(try openError(stFileBytes("{\"__metadata__\":[]}")), .metadataNotObject(path: p, offset: 9))
        // A "tensor" named __metadata__ is metadata, and its shape is not a string.
        let named = stFileBytes("{" + entry("__metadata__", "F32", "[1]", "[0,4]") + "}", data: [0, 0, 0, 0])
        guard case .metadataNotString(_, "shape", _)? = try openError(named) else { return XCTFail() }
        let twice = stFileBytes("{\"__metadata__\":{},\"__metadata__\":{}}")
        XCTAssertEqual(try openError(twice), .duplicateKey(path: p, key: "__metadata__", offset: 27))
    }

    func testMetadataIsRead() throws {
        let f = try open(stFileBytes("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\u{E9} \\\"q\\\"\"}}"))
        XCTAssertEqual(f.metadata, ["format": "pt", "note": "caf\u{E9} \"q\""])
    }

    func testDuplicateTensorKeys() throws {
        let first = entry("a", "U8", "[8]", "[0,8]")
        let same = "{" + first + "," + first + "}"
        XCTAssertEqual(try openError(stFileBytes(same, data: [UInt8](repeating: 0, count: 8))),
                       .duplicateKey(path: p, key: "a", offset: 8 + 1 + first.utf8.count + 1))
        let different = "{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("a", "U8", "[8]", "[8,16]") + "}"
        guard case .duplicateKey(_, "a", _)? = try openError(stFileBytes(different, data: [UInt8](repeating: 0, count: 16))) else {
            return XCTFail()
        }
        let field = "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}"
        guard case .duplicateKey(_, "dtype", _)? = try openError(stFileBytes(field, data: [0])) else { return XCTFail() }
    }

    func testUnknownFieldRejected() throws {
        let header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"evil\":\"x\"}}"
        guard case let .unknownField(_, tensor, field, offset)? = try openError(stFileBytes(header, data: [0])) else {
            return XCTFail()
        }
        XCTAssertEqual([tensor, field], ["a", "evil"])
        XCTAssertEqual(offset, 8 + header.utf8.count - "\"evil\":\"x\"}}".utf8.count)
    }

    func testMissingFieldRejected() throws {
        for (field, header) in [("dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}"),
                                ("shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}"),
                                ("data_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}")] {
            XCTAssertEqual(try openError(stFileBytes(header, data: [0])), .missingField(path: p, tensor: "a", field: field, offset: 9))
        }
    }

    func testEntryMustBeObject() throws {
        XCTAssertEqual(try openError(stFileBytes("{\"a\":[0,1]}")), .entryNotObject(path: p, tensor: "a", offset: 9))
    }

    func testBadNumbers() throws {
        let cases: [(String, String, String)] = [
            ("shape", "[2.0,2]", "[0,4]"), ("shape", "[1e3]", "[0,1000]"), ("shape", "[-2]", "[0,0]"),
            ("shape", "[18446744073709551616]", "[0,0]"), ("shape", "[9007199254740993]", "[0,0]"),
            ("shape", "[2,4611686018427387904]", "[0,0]"), ("shape", "[-0]", "[0,0]"), ("shape", "[\"1\"]", "[0,1]"),
            ("shape", "5", "[0,5]"), ("data_offsets", "[4]", "[0]"), ("data_offsets", "[4]", "[0,4,4]"),
            ("data_offsets", "[4]", "[0.0,4]"), ("data_offsets", "[4]", "[0,9007199254740993]"),
        ]
        for (field, shape, offsets) in cases {
            let bytes = stFileBytes("{" + entry("w", "U8", shape, offsets) + "}", data: [0, 0, 0, 0])
            XCTAssertEqual(try openError(bytes), .badNumber(path: p, tensor: "w", field: field,
                                                            offset: field == "shape" ? 27 : 36 + shape.utf8.count),
                           "\(shape) \(offsets)")
        }
    }

    func testTooManyTensors() throws {
        var limits = SafetensorsHeader.Limits()
        limits.maxTensors = 3
        let header = "{" + (0..<4).map { entry("t\($0)", "U8", "[0]", "[0,0]") }.joined(separator: ",") + "}"
        XCTAssertEqual(try openError(stFileBytes(header), limits: limits), .tooManyTensors(path: p, limit: 3))
    }

    // MARK: Offsets and sizes

    func testHoleAtStart() throws {
        let bytes = stFileBytes("{" + entry("a", "U8", "[16]", "[8,24]") + "}", data: [UInt8](repeating: 0, count: 24))
        XCTAssertEqual(try openError(bytes), .offsetsNotContiguous(path: p, tensor: "a", expectedBegin: 0, begin: 8))
    }

    func testHoleBetweenTensors() throws {
        let header = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[8,12]") + "}"
        XCTAssertEqual(try openError(stFileBytes(header, data: [UInt8](repeating: 0, count: 12))),
                       .offsetsNotContiguous(path: p, tensor: "b", expectedBegin: 4, begin: 8))
    }

    func testOverlappingTensors() throws {
        // safetensors' test_json_attack: ten tensors on one region.
        let header = "{" + (0..<10).map { entry("t\($0)", "F32", "[4]", "[0,16]") }.joined(separator: ",") + "}"
        guard case let .offsetsNotContiguous(_, _, expected, begin)? = try openError(stFileBytes(header, data: [UInt8](repeating: 0, count: 16)))
        else { return XCTFail() }
        XCTAssertEqual([expected, begin], [16, 0])
    }

    func testReversedOffsets() throws {
        let bytes = stFileBytes("{" + entry("a", "U8", "[0]", "[16,0]") + "}", data: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(try openError(bytes), .offsetsReversed(path: p, tensor: "a", begin: 16, end: 0))
    }

    func testOffsetsPastEndOfFile() throws {
        let bytes = stFileBytes("{" + entry("a", "F32", "[4]", "[0,16]") + "}", data: [UInt8](repeating: 0, count: 8))
        let n = bytes.count - 16
        XCTAssertEqual(try openError(bytes), .truncated(path: p, dataEnd: n + 8 + 16, fileSize: bytes.count))
    }

    func testShapeTimesDTypeMustMatchByteLength() throws {
        let bytes = stFileBytes("{" + entry("w", "F32", "[1000,1000]", "[0,4]") + "}", data: [0, 0, 0, 0])
        XCTAssertEqual(try openError(bytes), .sizeMismatch(path: p, tensor: "w", expected: 4_000_000, actual: 4))
    }

    func testShapeProductOverflow() throws {
        for shape in [[4_294_967_296, 4_294_967_296, 2], [1 << 40, 1 << 40], [4_294_967_296, 4_294_967_296]] {
            let text = "[" + shape.map(String.init).joined(separator: ",") + "]"
            let bytes = stFileBytes("{" + entry("w", "U8", text, "[0,0]") + "}")
            XCTAssertEqual(try openError(bytes), .shapeOverflow(path: p, tensor: "w", shape: shape))
        }
        // Elements fit (2^61), bytes do not (2^64).
        let big = stFileBytes("{" + entry("w", "F64", "[9007199254740992,256]", "[0,0]") + "}")
        XCTAssertEqual(try openError(big), .shapeOverflow(path: p, tensor: "w", shape: [1 << 53, 256]))
    }

    func testTrailingBytesRejected() throws {
        let valid = stFileBytes("{" + entry("a", "U8", "[2]", "[0,2]") + "}", data: [1, 2])
        XCTAssertEqual(try openError(valid + [0]), .trailingBytes(path: p, dataEnd: valid.count, fileSize: valid.count + 1))
        let zipTail: [UInt8] = [0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)
        guard case .trailingBytes? = try openError(valid + zipTail) else { return XCTFail() }
    }

    func testTruncatedDataRejected() throws {
        let valid = stFileBytes("{" + entry("a", "U8", "[2]", "[0,2]") + "}", data: [1, 2])
        XCTAssertEqual(try openError(Array(valid.dropLast())), .truncated(path: p, dataEnd: valid.count, fileSize: valid.count - 1))
    }

    func testZeroSizedTensorsAccepted() throws {
        let header = "{" + entry("z", "F32", "[0]", "[0,0]") + "," + entry("a", "F32", "[4]", "[0,16]") + ","
            + entry("e", "I64", "[3,0,5]", "[16,16]") + "}"
        let f = try open(stFileBytes(header, data: (0..<16).map { UInt8($0) }))
        XCTAssertEqual(f.tensors.map(\.name), ["a", "e", "z"])
        XCTAssertEqual(try f.data(for: "z").bytes.count, 0)
        XCTAssertEqual(f.info(named: "e")?.shape, [3, 0, 5])
        XCTAssertEqual(Array(try f.data(for: "a").bytes), (0..<16).map { UInt8($0) })
    }

    func testRankZeroScalar() throws {
        let value = Float(1.25).bitPattern
        let data = (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
        let f = try open(stFileBytes("{" + entry("s", "F32", "[]", "[0,4]") + "}", data: data))
        XCTAssertEqual(f.info(named: "s"), TensorInfo(name: "s", dtype: .F32, shape: [], byteCount: 4))
        XCTAssertEqual(try f.data(for: "s").bytes.readLE(0, as: UInt32.self), value)
    }

    func testMissingTensorAndDirectory() throws {
        let f = try open(stFileBytes("{}"))
        XCTAssertThrowsError(try f.data(for: "nope")) { error in
            XCTAssertEqual(error as? ReaderError, .tensorNotFound(path: f.path, tensor: "nope"))
        }
        XCTAssertThrowsError(try SafetensorsFile(path: folder)) { error in
            XCTAssertEqual(error as? ReaderError, .file(.notRegularFile(path: folder)))
        }
    }

    func testErrorDescriptionsAreOneLineNamingFileAndRule() throws {
        let e = try XCTUnwrap(try openError(stFileBytes("{" + entry("w", "F32", "[1000,1000]", "[0,4]") + "}", data: [0, 0, 0, 0])))
        XCTAssertEqual(e.description, "\(p): tensor w: byte length 4 does not match shape × dtype (4000000 bytes)")
        let dup = try XCTUnwrap(try openError(stFileBytes("{\"a\":{},\"a\":{}}")))
        XCTAssertEqual(dup.description, "\(p): duplicate key \"a\" at byte 16")
        XCTAssertFalse(e.description.contains("\n"))
    }
}

// MARK: - Writer

final class SafetensorsWriterTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try stTemporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32($0))) } }
    }

    /// Byte-identical to `safetensors.numpy.save` 0.8.0 for one dtype (its order is then by name).
    func testSerializeMatchesReferenceWriter() throws {
        let bytes = try SafetensorsWriter.serialize([
            (TensorInfo(name: "b", dtype: .F32, shape: [4], byteCount: 16), floats([0, 1, 2, 3])),
            (TensorInfo(name: "a.w", dtype: .F32, shape: [2, 3], byteCount: 24), floats([0, 0.5, 1, 1.5, 2, 2.5])),
            (TensorInfo(name: "z", dtype: .F32, shape: [0], byteCount: 0), []),
        ], metadata: ["x": "y\"", "format": "pt"])
        // python: safetensors.numpy.save({"b": arange(4), "a.w": arange(6).reshape(2,3)*0.5, "z": zeros(0)},
        //                                metadata={"format": "pt", "x": 'y"'}).hex()
        let reference = "d8000000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074222c2278223a22795c22227d2c22612e77223a7b226474797065223a22463332222c227368617065223a5b322c335d2c22646174615f6f666673657473223a5b302c32345d7d2c2262223a7b226474797065223a22463332222c227368617065223a5b345d2c22646174615f6f666673657473223a5b32342c34305d7d2c227a223a7b226474797065223a22463332222c227368617065223a5b305d2c22646174615f6f666673657473223a5b34302c34305d7d7d202020202020000000000000003f0000803f0000c03f0000004000002040000000000000803f0000004000004040"
        XCTAssertEqual(bytes.map { String(format: "%02x", $0) }.joined(), reference)
    }

    func testStreamingRoundTripAllDTypes() throws {
        let dtypes: [DType] = [.F64, .F32, .F16, .BF16, .I64, .I32, .I16, .I8, .U8, .BOOL, .U16, .U32, .U64, .F8_E4M3, .F8_E5M2]
        var infos: [TensorInfo] = []
        var payload: [String: [UInt8]] = [:]
        for (k, d) in dtypes.enumerated() {
            let shape = [k % 3 + 1, 5]
            let info = TensorInfo(name: "t.\(d.rawValue)", dtype: d, shape: shape, byteCount: shape[0] * 5 * d.blockBytes)
            infos.append(info)
            payload[info.name] = (0..<info.byteCount).map { UInt8(truncatingIfNeeded: $0 * 7 + k) }
        }
        infos.append(TensorInfo(name: "scalar", dtype: .F32, shape: [], byteCount: 4))
        payload["scalar"] = floats([3.5])
        let path = folder + "/out.safetensors"
        let writer = try SafetensorsWriter(path: path, tensors: infos.reversed(), metadata: ["format": "pt"])
        XCTAssertEqual(writer.order.map(\.name), infos.map(\.name).sorted())
        for info in writer.order { try payload[info.name]!.withUnsafeBytes { try writer.append(info.name, bytes: $0) } }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "published before commit")
        try writer.commit()

        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.tensors, infos.sorted { $0.name < $1.name })
        XCTAssertEqual(f.metadata, ["format": "pt"])
        XCTAssertEqual((8 + f.headerLength) % 8, 0)
        for info in infos { XCTAssertEqual(Array(try f.data(for: info.name).bytes), payload[info.name], info.name) }
    }

    func testWriterRejectsMisuse() throws {
        let a = TensorInfo(name: "a", dtype: .U8, shape: [2], byteCount: 2)
        let b = TensorInfo(name: "b", dtype: .U8, shape: [1], byteCount: 1)
        let w = try SafetensorsWriter(path: folder + "/w.safetensors", tensors: [b, a])
        XCTAssertThrowsError(try [UInt8(1)].withUnsafeBytes { try w.append("b", bytes: $0) }) {
            XCTAssertEqual($0 as? SafetensorsWriter.WriterError, .outOfOrder(expected: "a", got: "b"))
        }
        XCTAssertThrowsError(try [UInt8(1)].withUnsafeBytes { try w.append("a", bytes: $0) }) {
            XCTAssertEqual($0 as? SafetensorsWriter.WriterError, .badTensor(tensor: "a", reason: "got 1 bytes, expected 2"))
        }
        XCTAssertThrowsError(try w.commit()) { XCTAssertEqual($0 as? SafetensorsWriter.WriterError, .incomplete(missing: "a")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w.safetensors"))

        let q = TensorInfo(name: "q", dtype: .Q8_0, shape: [32], byteCount: 34)
        XCTAssertThrowsError(try SafetensorsWriter.header(tensors: [q], metadata: [:])) {
            XCTAssertEqual($0 as? SafetensorsWriter.WriterError, .notSafetensorsDType(tensor: "q", dtype: .Q8_0))
        }
        XCTAssertThrowsError(try SafetensorsWriter.header(tensors: [a, a], metadata: [:]))
        XCTAssertThrowsError(try SafetensorsWriter.header(tensors: [TensorInfo(name: "x", dtype: .F32, shape: [3], byteCount: 4)], metadata: [:]))
        XCTAssertThrowsError(try SafetensorsWriter.header(tensors: [TensorInfo(name: "__metadata__", dtype: .U8, shape: [0], byteCount: 0)], metadata: [:]))
    }
}

// MARK: - Sharded index

final class SafetensorsIndexTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try stTemporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func shard(_ name: String, _ tensors: [String]) throws {
        let bytes = try SafetensorsWriter.serialize(tensors.map {
            (TensorInfo(name: $0, dtype: .U8, shape: [2], byteCount: 2), Array($0.utf8.prefix(1)) + [9])
        })
        try stWrite(bytes, to: folder + "/" + name)
    }

    func index(_ json: String) throws -> String {
        let path = folder + "/model.safetensors.index.json"
        try stWrite(Array(json.utf8), to: path)
        return path
    }

    func indexError(_ json: String) throws -> ReaderError? {
        let path = try index(json)
        do {
            _ = try SafetensorsIndex(path: path)
            XCTFail("opened a bad index")
            return nil
        } catch {
            return error
        }
    }

    func testReadsShards() throws {
        try shard("s1.safetensors", ["a", "c"])
        try shard("s2.safetensors", ["b"])
        let path = try index(#"{"metadata":{"total_size":6},"weight_map":{"c":"s1.safetensors","a":"s1.safetensors","b":"s2.safetensors"}}"#)
        let ix = try SafetensorsIndex(path: path)
        XCTAssertEqual(ix.tensors.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(ix.shardNames, ["s1.safetensors", "s2.safetensors"])
        XCTAssertEqual(ix.shardName(of: "b"), "s2.safetensors")
        XCTAssertEqual(ix.declaredTotalSize, 6)
        XCTAssertEqual(Array(try ix.data(for: "c").bytes), [UInt8(ascii: "c"), 9])
        XCTAssertThrowsError(try ix.data(for: "d"))
    }

    func testShardNamesCannotLeaveTheFolder() throws {
        for bad in ["../../x.safetensors", "/etc/passwd", "a/../b.safetensors", "x\\u0000.safetensors", "sub/x.safetensors",
                    ".safetensors", "..safetensors", "x.bin", "a\\\\b.safetensors"] {
            let e = try indexError(#"{"weight_map":{"a":"\#(bad)"}}"#)
            guard case .badShardName? = e else { return XCTFail("\(bad): \(String(describing: e))") }
        }
        guard case .badIndex? = try indexError(#"{"weight_map":{"a":7}}"#) else { return XCTFail() }
    }

    func testIndexShape() throws {
        for json in [#"[]"#, #"{"metadata":{}}"#, #"{"weight_map":{}}"#, #"{"weight_map":[]}"#, #"{"metadata":[],"weight_map":{"a":"s.safetensors"}}"#,
                     #"{"metadata":{"total_size":1.5},"weight_map":{"a":"s.safetensors"}}"#,
                     #"{"weight_map":{"a":"s.safetensors"},"extra":1}"#] {
            guard case .badIndex? = try indexError(json) else { return XCTFail(json) }
        }
        guard case .badConfig(_, let e)? = try indexError(#"{"weight_map":{"a":"s.safetensors","a":"s.safetensors"}}"#) else {
            return XCTFail()
        }
        XCTAssertEqual(e.kind, .duplicateKey("a"))
    }

    func testMissingShardFile() throws {
        guard case .file(.open)? = try indexError(#"{"weight_map":{"a":"gone.safetensors"}}"#) else { return XCTFail() }
    }

    func testMappedTensorMissingFromShard() throws {
        try shard("s1.safetensors", ["a"])
        XCTAssertEqual(try indexError(#"{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#),
                       .tensorMissingFromShard(path: folder + "/model.safetensors.index.json", tensor: "b", shard: "s1.safetensors"))
    }

    func testTensorInTwoShards() throws {
        try shard("s1.safetensors", ["a"])
        try shard("s2.safetensors", ["a", "b"])
        XCTAssertEqual(try indexError(#"{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}"#),
                       .tensorInTwoShards(path: folder + "/model.safetensors.index.json", tensor: "a",
                                          shards: ["s1.safetensors", "s2.safetensors"]))
    }

    func testShardTensorNotInMap() throws {
        try shard("s1.safetensors", ["a", "hidden"])
        XCTAssertEqual(try indexError(#"{"weight_map":{"a":"s1.safetensors"}}"#),
                       .tensorNotInIndex(path: folder + "/model.safetensors.index.json", tensor: "hidden", shard: "s1.safetensors"))
    }
}

// MARK: - Files written by the Python reference (fixtures/readers/expected.json)

final class SafetensorsFixtureTests: XCTestCase {
    /// Every safetensors file and index in expected.json: same tensor names, dtypes, shapes, byte
    /// counts, SHA-256 of the bytes, shard of each tensor, and metadata.
    func testFixturesMatchReference() throws {
        let expectedPath = stFixture("readers/expected.json")
        let doc = try StrictJSON.parse(try DiffusersFiles.read(expectedPath, limit: 64 << 20))
        let files = try XCTUnwrap(doc["files"]?.object)
        var checkedFiles = 0
        var checkedTensors = 0
        for file in files.members {
            let format = file.value["format"]?.string
            guard format == "safetensors" || format == "safetensors-index" else { continue }
            let path = stFixture("readers/" + file.key)
            let source: TensorSource = format == "safetensors" ? try SafetensorsFile(path: path) : try SafetensorsIndex(path: path)
            let expected = try XCTUnwrap(file.value["tensors"]?.object)
            XCTAssertEqual(source.tensors.map(\.name), expected.keys.sorted(), file.key)
            for t in expected.members {
                let data = try source.data(for: t.key)
                XCTAssertEqual(data.info.dtype.rawValue, t.value["dtype"]?.string, t.key)
                XCTAssertEqual(data.info.shape, t.value["shape"]?.array?.compactMap(\.int), t.key)
                XCTAssertEqual(data.info.byteCount, t.value["bytes"]?.int, t.key)
                XCTAssertEqual(data.withBytes(stSHA256Hex), t.value["sha256"]?.string, "\(file.key): \(t.key)")
                if let shard = t.value["shard"]?.string {
                    XCTAssertEqual((source as? SafetensorsIndex)?.shardName(of: t.key), shard)
                }
                checkedTensors += 1
            }
            if format == "safetensors", let meta = file.value["metadata"]?.object {
                XCTAssertEqual((source as? SafetensorsFile)?.metadata, Dictionary(uniqueKeysWithValues: meta.members.map { ($0.key, $0.value.string ?? "") }))
            }
            checkedFiles += 1
        }
        XCTAssertGreaterThanOrEqual(checkedFiles, 9)
        XCTAssertGreaterThan(checkedTensors, 400)
    }
}
