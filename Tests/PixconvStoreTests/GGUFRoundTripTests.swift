import Foundation
import XCTest
import PixconvCore
import PixconvQuant
@testable import PixconvStore

private func rtFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/store/" + name).path
}

/// Deterministic test bytes.
private func rtBytes(_ n: Int, seed: UInt64) -> [UInt8] {
    var s = seed | 1
    return (0..<n).map { _ in
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return UInt8(truncatingIfNeeded: s >> 24)
    }
}

final class GGUFRoundTripTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "pixconv-roundtrip-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// Every metadata type, including nested arrays and empty ones.
    private let allValues: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("pixart")),
        ("t.u8", .uint8(255)), ("t.i8", .int8(-128)), ("t.u16", .uint16(65535)), ("t.i16", .int16(-32768)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-7)), ("t.f32", .float32(-0.375)), ("t.bool", .bool(true)),
        ("t.string", .string("ünïcode ✓")), ("t.u64", .uint64(UInt64.max)), ("t.i64", .int64(Int64.min)),
        ("t.f64", .float64(Double(bitPattern: 0x0000_1234_5678_9ABC))),  // subnormal
        ("t.a.u8", .array(.uint8([0, 1, 255]))), ("t.a.i8", .array(.int8([-1, 2]))),
        ("t.a.u16", .array(.uint16([9]))), ("t.a.i16", .array(.int16([-9, 9]))),
        ("t.a.u32", .array(.uint32([1, 2, 3]))), ("t.a.i32", .array(.int32([]))),
        ("t.a.f32", .array(.float32([1.5, -2]))), ("t.a.bool", .array(.bool([true, false]))),
        ("t.a.string", .array(.string(["", "x", "yz"]))), ("t.a.u64", .array(.uint64([UInt64.max]))),
        ("t.a.i64", .array(.int64([Int64.min, 0]))), ("t.a.f64", .array(.float64([0.1]))),
        ("t.a.nested", .array(.array([.int32([1, 2]), .string(["a"]), .array([.bool([true])])]))),
    ]

    /// One tensor of every type GGUF can hold for pixconv, including a zero-sized one and 4-D.
    private var allTensors: [(TensorInfo, [UInt8])] {
        let specs: [(String, DType, [Int])] = [
            ("w.f32", .F32, [3, 5]), ("w.f16", .F16, [2, 3, 4]), ("w.bf16", .BF16, [7]), ("w.q8_0", .Q8_0, [2, 64]),
            ("w.q4_0", .Q4_0, [1, 2, 3, 32]), ("w.q4_1", .Q4_1, [32]), ("w.q5_0", .Q5_0, [2, 32]),
            ("w.q5_1", .Q5_1, [3, 32]), ("w.i8", .I8, [9]), ("w.i16", .I16, [3]), ("w.i32", .I32, [2, 2]),
            ("w.i64", .I64, [1]), ("w.f64", .F64, [2]), ("w.empty", .F32, [0, 4]),
        ]
        return specs.enumerated().map { i, s in
            let n = s.1.byteCount(elements: elementCount(s.2)!)!
            return (TensorInfo(name: s.0, dtype: s.1, shape: s.2, byteCount: n), rtBytes(n, seed: UInt64(i + 1)))
        }
    }

    private func writeAll(_ path: String, pieces: Int = 1) throws -> GGUFWriter {
        let tensors = allTensors
        let w = try GGUFWriter(path: path, metadata: allValues, tensors: tensors.map(\.0))
        for (_, bytes) in tensors {
            let step = max(1, bytes.count / pieces)
            var at = 0
            while at < bytes.count {
                let end = min(bytes.count, at + step)
                try w.append(Array(bytes[at..<end]))
                at = end
            }
        }
        try w.finish()
        return w
    }

    func testRoundTripEveryTypeAndValue() throws {
        let path = folder + "/all.gguf"
        let w = try writeAll(path, pieces: 3)
        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.value("general.alignment"), .uint32(64))
        for (key, value) in allValues {
            XCTAssertEqual(f.value(key), value, key)
        }
        XCTAssertEqual(f.metadata.map(\.key), allValues.map(\.key) + ["general.alignment"])  // insertion order
        XCTAssertEqual(f.tensorsInFileOrder.map(\.name), allTensors.map(\.0.name))
        for (info, bytes) in allTensors {
            XCTAssertEqual(f.info(for: info.name), info)
            let d = try f.data(for: info.name)
            XCTAssertEqual(Array(d.bytes), bytes, info.name)
            XCTAssertEqual((f.fileOffset(of: info.name) ?? 1) % 64, 0)
        }
        XCTAssertEqual(w.tensorCRC32s, allTensors.map { crc32($0.1) })
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
        XCTAssertEqual(size, w.totalSize)
        XCTAssertEqual(f.dataOffset, w.dataOffset)
        if let out = ProcessInfo.processInfo.environment["PIXCONV_GGUF_TEST_OUT"] {  // for scripts/check_store_with_gguf_py.py
            try? FileManager.default.removeItem(atPath: out)
            try FileManager.default.copyItem(atPath: path, toPath: out)
        }
    }

    /// Layout checked against the spec by hand: dims reversed, type ids, offsets.
    func testLayoutBytes() throws {
        let path = folder + "/layout.gguf"
        let info = TensorInfo(name: "x", dtype: .Q8_0, shape: [3, 64], byteCount: 3 * 2 * 34)
        let w = try GGUFWriter(path: path, metadata: [("general.architecture", .string("pixart"))], tensors: [info])
        try w.append(rtBytes(info.byteCount, seed: 9))
        try w.finish()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(b[0..<4]), Array("GGUF".utf8))
        XCTAssertEqual(Array(b[4..<8]), [3, 0, 0, 0])
        XCTAssertEqual(Array(b[8..<16]), [1, 0, 0, 0, 0, 0, 0, 0])  // one tensor
        XCTAssertEqual(Array(b[16..<24]), [2, 0, 0, 0, 0, 0, 0, 0])  // two KVs (alignment added)
        // KV 1: key (8 + 20) + type 4 + string (8 + 6) = 46 bytes; KV 2: 8 + 17 + 4 + 4 = 33 bytes.
        let ti = 24 + 46 + 33
        XCTAssertEqual(Array(b[ti..<ti + 9]), [1, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "x")])
        XCTAssertEqual(Array(b[ti + 9..<ti + 13]), [2, 0, 0, 0])  // n_dims
        XCTAssertEqual(Array(b[ti + 13..<ti + 21]), [64, 0, 0, 0, 0, 0, 0, 0])  // ne[0] = last PyTorch dim
        XCTAssertEqual(Array(b[ti + 21..<ti + 29]), [3, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(Array(b[ti + 29..<ti + 33]), [8, 0, 0, 0])  // GGML_TYPE_Q8_0
        XCTAssertEqual(Array(b[ti + 33..<ti + 41]), [0, 0, 0, 0, 0, 0, 0, 0])  // offset
        XCTAssertEqual(w.dataOffset, 192)  // 144 rounded up to 64
        XCTAssertTrue(b[ti + 41..<192].allSatisfy { $0 == 0 })
        XCTAssertEqual(b.count, 192 + 256)  // 204 bytes padded to 256
        XCTAssertTrue(b[192 + 204..<b.count].allSatisfy { $0 == 0 })
    }

    func testOutputIsDeterministic() throws {
        _ = try writeAll(folder + "/a.gguf", pieces: 1)
        _ = try writeAll(folder + "/b.gguf", pieces: 4)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/a.gguf")),
                       try Data(contentsOf: URL(fileURLWithPath: folder + "/b.gguf")))
    }

    func testWriterChecksSizesOrderAndInputs() throws {
        let a = TensorInfo(name: "a", dtype: .F32, shape: [2], byteCount: 8)
        let b = TensorInfo(name: "b", dtype: .F16, shape: [4], byteCount: 8)
        let arch: [(key: String, value: GGUFValue)] = [("general.architecture", .string("pixart"))]
        let path = folder + "/w.gguf"

        var w = try GGUFWriter(path: path, metadata: arch, tensors: [a, b])
        XCTAssertThrowsError(try w.append([UInt8](repeating: 1, count: 9))) {
            XCTAssertEqual($0 as? StoreError, .tensorSizeMismatch(file: path, tensor: "a", expected: 8, actual: 9))
        }
        try w.append([UInt8](repeating: 1, count: 5))
        XCTAssertThrowsError(try w.finish()) {
            XCTAssertEqual($0 as? StoreError, .tensorSizeMismatch(file: path, tensor: "a", expected: 8, actual: 5))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))  // nothing published

        w = try GGUFWriter(path: path, metadata: arch, tensors: [a, b])
        let zeros = [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try zeros.withUnsafeBytes { try w.writeTensor("b", $0) })
        XCTAssertEqual(w.nextTensor, "a")

        func rejects(_ tensors: [TensorInfo], _ kvs: [(key: String, value: GGUFValue)] = [], alignment: Int = 64) {
            XCTAssertThrowsError(try GGUFWriter(path: path, metadata: arch + kvs, tensors: tensors, alignment: alignment)) {
                guard case .badWriterInput? = $0 as? StoreError else { return XCTFail("\($0)") }
            }
        }
        rejects([TensorInfo(name: String(repeating: "n", count: 64), dtype: .F32, shape: [1], byteCount: 4)])
        rejects([a, a])
        rejects([TensorInfo(name: "c", dtype: .F32, shape: [1, 1, 1, 1, 1], byteCount: 4)])
        rejects([TensorInfo(name: "c", dtype: .Q8_0, shape: [2, 16], byteCount: 34)])  // row 16
        rejects([TensorInfo(name: "c", dtype: .F32, shape: [3], byteCount: 8)])  // wrong byte count
        rejects([TensorInfo(name: "c", dtype: .BOOL, shape: [3], byteCount: 3)])  // no ggml type
        rejects([], [("general.architecture", .string("again"))])
        rejects([], [("general.alignment", .uint32(32))])
        rejects([], [("", .uint8(1))])
        rejects([], alignment: 48)
        rejects([], [("deep", .array(.array([.array([.array([.uint8([1])])])])))])

        // An existing file is kept unless replacing is asked for.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try GGUFWriter(path: path, metadata: arch, tensors: [], replace: false))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data([1, 2, 3]))
    }

    /// A file written by gguf-py 0.19.0's GGUFWriter (scripts/make_store_fixture.py), checked
    /// against the values gguf-py itself reported.
    func testReadsFileWrittenByGGUFPy() throws {
        let f = try GGUFFile(path: rtFixture("gguf-py.gguf"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: rtFixture("gguf-py.json"))))
        let expect = try XCTUnwrap(json as? [String: Any])
        XCTAssertEqual(f.alignment, expect["alignment"] as? Int)
        XCTAssertNil(f.value("general.alignment"))
        XCTAssertEqual(f.dataOffset, expect["data_offset"] as? Int)
        XCTAssertEqual(f.value("general.architecture"), .string("pixart"))
        XCTAssertEqual(f.value("test.u8"), .uint8(200))
        XCTAssertEqual(f.value("test.i8"), .int8(-5))
        XCTAssertEqual(f.value("test.u16"), .uint16(65000))
        XCTAssertEqual(f.value("test.i16"), .int16(-30000))
        XCTAssertEqual(f.value("test.u32"), .uint32(4_000_000_000))
        XCTAssertEqual(f.value("test.i32"), .int32(-2_000_000_000))
        XCTAssertEqual(f.value("test.f32"), .float32(1.5))
        XCTAssertEqual(f.value("test.bool"), .bool(true))
        XCTAssertEqual(f.value("test.string"), .string("héllo, wörld"))
        XCTAssertEqual(f.value("test.u64"), .uint64(9_223_372_036_854_775_813))
        XCTAssertEqual(f.value("test.i64"), .int64(-4_611_686_018_427_387_904))
        XCTAssertEqual(f.value("test.f64"), .float64(-2.25e-300))
        XCTAssertEqual(f.value("test.bytes"), .array(.uint8(Array(stride(from: 0, to: 256, by: 5)).map(UInt8.init))))
        XCTAssertEqual(f.value("test.ints"), .array(.int32([1, -2, 3, Int32.max])))
        XCTAssertEqual(f.value("test.floats"), .array(.float32([0.5, -1.25, 3.0e10])))
        XCTAssertEqual(f.value("test.strings"), .array(.string(["a", "", "ünï"])))
        XCTAssertEqual(f.value("test.bools"), .array(.bool([true, false, true])))
        XCTAssertEqual(f.value("test.nested"), .array(.array([.int32([1, 2, 3]), .int32([4, 5])])))
        let kvs = try XCTUnwrap(expect["kvs"] as? [String: Any])
        XCTAssertEqual(Set(f.metadata.map(\.key)), Set(kvs.keys))

        let tensors = try XCTUnwrap(expect["tensors"] as? [[String: Any]])
        XCTAssertEqual(f.tensorsInFileOrder.map(\.name), tensors.compactMap { $0["name"] as? String })
        for t in tensors {
            let name = try XCTUnwrap(t["name"] as? String)
            let info = try XCTUnwrap(f.info(for: name))
            XCTAssertEqual(info.dtype.rawValue, t["type"] as? String, name)
            XCTAssertEqual(info.shape, t["shape"] as? [Int], name)
            XCTAssertEqual(info.byteCount, t["nbytes"] as? Int, name)
            let data = try f.data(for: name)
            XCTAssertEqual(Int(data.withBytes { crc32($0) }), t["crc32"] as? Int, name)
            let values = try dequantizeToFloat(data)
            let expected = try XCTUnwrap(t["values"] as? [Double]).map { Float($0) }
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), name)
        }
    }
}
