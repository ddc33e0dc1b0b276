import Foundation
import PixconvCore
import PixconvTestSupport
import XCTest
@testable import PixconvReaders

/// SHA-256 (FIPS 180-4), for comparing tensor bytes with the digests in expected.json.
func torchSHA256(_ data: UnsafeRawBufferPointer) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
        0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
        0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
        0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var message = [UInt8](data)
    let bitLength = UInt64(data.count) * 8
    message.append(0x80)
    while message.count % 64 != 56 { message.append(0) }
    for i in (0..<8).reversed() { message.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: message.count, by: 64) {
        for i in 0..<16 {
            w[i] = (0..<4).reduce(0) { $0 << 8 | UInt32(message[chunk + 4 * i + $1]) }
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
    }
    return h.map { String(format: "%08x", $0) }.joined()
}

/// A zip checkpoint made by hand: `<folder>/data.pkl`, records, version and byteorder.
func torchTestCheckpoint(_ pickle: [UInt8], records: [(String, [UInt8])] = [], folder: String = "archive",
                         byteorder: String? = "little", extra: [TestZip.Item] = []) -> [UInt8] {
    var z = TestZip(zip64: true)
    z.items = [.init(name: "\(folder)/data.pkl", data: pickle)]
    if let order = byteorder { z.items.append(.init(name: "\(folder)/byteorder", data: Array(order.utf8))) }
    for (key, bytes) in records { z.items.append(.init(name: "\(folder)/data/\(key)", data: bytes)) }
    z.items.append(.init(name: "\(folder)/version", data: Array("3\n".utf8)))
    z.items += extra
    return z.build()
}

/// Results written from several threads.
final class TorchTestResults: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var storage: [String]
    init(count: Int) { storage = [String](repeating: "", count: count) }
    func set(_ i: Int, _ v: String) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}

final class TorchCheckpointTests: XCTestCase {
    static let readers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/readers")

    func open(_ bytes: [UInt8]) throws -> TorchCheckpoint { try torchWithTestFile(bytes) { try TorchCheckpoint(path: $0) } }

    func expectError<E: Error & Equatable>(_ bytes: [UInt8], _ expected: E, read: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let c = try open(bytes)
            if read { for t in c.tensors { _ = try c.data(for: t.name) } }
            XCTFail("accepted a bad checkpoint", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? E, expected, "\(error)", file: file, line: line)
        }
    }

    /// `{'w': tensor}` with the given view of a FloatStorage of `numel` elements.
    func pickle(numel: Int, offset: Int = 0, shape: [Int], stride: [Int], type: String = "FloatStorage") -> [UInt8] {
        TPK.proto() + TPK.dict([("w", TPK.tensor(key: "0", type: type, numel: numel, offset: offset, shape: shape, stride: stride))]) + [TPK.STOP]
    }

    func floats(_ values: [Float]) -> [UInt8] { values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } } }

    // MARK: - Real checkpoints written by torch 2.15 (fixtures/readers, scripts/make_fixtures.py)

    func testFixturesMatchTorch() throws {
        let data = try Data(contentsOf: Self.readers.appendingPathComponent("expected.json"))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let files = try XCTUnwrap(root["files"] as? [String: [String: Any]])
        var checked: [String] = []
        for (fileName, spec) in files.sorted(by: { $0.key < $1.key }) {
            guard let format = spec["format"] as? String, format.hasPrefix("torch") else { continue }
            let checkpoint = try TorchCheckpoint(path: Self.readers.appendingPathComponent(fileName).path)
            XCTAssertEqual(checkpoint.format == .legacy, format == "torch-legacy", fileName)
            if let prefix = spec["prefix_bytes"] as? Int {
                XCTAssertEqual(checkpoint.format, .zip(folder: "prefixed", prefixLength: prefix))
            }
            let expected = try XCTUnwrap(spec["tensors"] as? [String: [String: Any]])
            XCTAssertEqual(checkpoint.tensors.map(\.name), expected.keys.sorted(), fileName)
            for info in checkpoint.tensors {
                let e = try XCTUnwrap(expected[info.name])
                XCTAssertEqual(info.dtype.rawValue, e["dtype"] as? String, "\(fileName) \(info.name)")
                XCTAssertEqual(info.shape, e["shape"] as? [Int], "\(fileName) \(info.name)")
                XCTAssertEqual(info.byteCount, e["bytes"] as? Int, "\(fileName) \(info.name)")
                let tensor = try checkpoint.data(for: info.name)
                XCTAssertEqual(tensor.withBytes { torchSHA256($0) }, e["sha256"] as? String, "\(fileName) \(info.name)")
            }
            let values = try XCTUnwrap(spec["values"] as? [String: Any])
            XCTAssertEqual(checkpoint.values.map(\.name), values.keys.sorted(), fileName)
            for (name, value) in checkpoint.values {
                let e = values[name]
                switch value {
                case let .int(i): XCTAssertEqual((e as? NSNumber)?.int64Value, i, "\(fileName) \(name)")
                case let .float(d): XCTAssertEqual((e as? NSNumber)?.doubleValue, d, "\(fileName) \(name)")
                case let .bool(b): XCTAssertEqual((e as? NSNumber)?.boolValue, b, "\(fileName) \(name)")
                case let .string(s): XCTAssertEqual(e as? String, s, "\(fileName) \(name)")
                case .none: XCTAssertTrue(e is NSNull, "\(fileName) \(name)")
                default: XCTFail("\(fileName) \(name): unexpected value \(value)")
                }
            }
            checked.append(fileName)
        }
        XCTAssertEqual(Set(checked), ["pixart-original.pth", "pixart-original-ms.pth", "transformer-f16.pt", "views.pt", "legacy.pt",
                                      "deflated.pt", "prefixed.pt", "big-endian.pt"])
    }

    func testContiguousViewsAreZeroCopy() throws {
        let c = try TorchCheckpoint(path: Self.readers.appendingPathComponent("views.pt").path)
        XCTAssertTrue(try c.data(for: "contiguous").owner is MappedFile)
        XCTAssertTrue(try c.data(for: "offset").owner is MappedFile)
        XCTAssertTrue(try c.data(for: "transposed").owner is HeapBuffer)
        XCTAssertTrue(try c.data(for: "strided").owner is HeapBuffer)
        XCTAssertThrowsError(try c.data(for: "nope")) { XCTAssertEqual($0 as? TorchError, .unknownTensor("nope")) }
    }

    /// Tensors sharing one storage, read from several threads at once (inflated and byte-swapped
    /// storages are cached and evicted concurrently), give the same bytes as serial reads.
    func testConcurrentReads() throws {
        for name in ["deflated.pt", "big-endian.pt", "views.pt"] {
            let path = Self.readers.appendingPathComponent(name).path
            let serial = try TorchCheckpoint(path: path)
            let expected = try serial.tensors.map { try serial.data(for: $0.name).withBytes { torchSHA256($0) } }
            let shared = try TorchCheckpoint(path: path)
            let names = shared.tensors.map(\.name)
            let results = TorchTestResults(count: names.count * 4)
            DispatchQueue.concurrentPerform(iterations: names.count * 4) { i in
                let digest = (try? shared.data(for: names[i % names.count]).withBytes { torchSHA256($0) }) ?? "error"
                results.set(i, digest)
            }
            for i in 0..<(names.count * 4) { XCTAssertEqual(results.values[i], expected[i % names.count], "\(name) \(names[i % names.count])") }
        }
    }

    func testPixArtLayout() throws {
        let c = try TorchCheckpoint(path: Self.readers.appendingPathComponent("pixart-original.pth").path)
        XCTAssertEqual(c.format, .zip(folder: "pixart-original", prefixLength: 0))
        XCTAssertEqual(c.value(named: "epoch"), .int(3))
        XCTAssertTrue(c.tensors.contains { $0.name == "state_dict.blocks.0.attn.qkv.weight" })
        XCTAssertNotNil(c.root["state_dict"])
    }

    // MARK: - Hand-made hostile checkpoints

    func testValidHandMadeCheckpoint() throws {
        let c = try open(torchTestCheckpoint(pickle(numel: 6, offset: 1, shape: [2, 2], stride: [1, 2]), records: [("0", floats([0, 1, 2, 3, 4, 5]))]))
        XCTAssertEqual(c.tensors, [TensorInfo(name: "w", dtype: .F32, shape: [2, 2], byteCount: 16)])
        // Elements at 1 + i·1 + j·2: [[1, 3], [2, 4]].
        XCTAssertEqual(try c.data(for: "w").withBytes { Array($0) }, floats([1, 3, 2, 4]))
    }

    /// `_rebuild_tensor_v3` on an untyped storage (how torch.save writes uint16/uint32/float8 tensors).
    func testRebuildTensorV3() throws {
        var t = TPK.global("torch._utils", "_rebuild_tensor_v3") + [TPK.MARK]
        t += [TPK.MARK] + TPK.str("storage") + TPK.global("torch.storage", "UntypedStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(12)
        t += [TPK.TUPLE, TPK.BINPERSID] + TPK.int(0) + TPK.tuple([2, 3]) + TPK.tuple([1, 2]) + [TPK.NEWFALSE]
        t += TPK.global("collections", "OrderedDict") + [TPK.EMPTY_TUPLE, TPK.REDUCE] + TPK.global("torch", "uint16") + [TPK.TUPLE, TPK.REDUCE]
        let record = [UInt16](0..<6).flatMap { TestLE.u16(Int($0)) }
        let c = try open(torchTestCheckpoint(TPK.proto() + TPK.dict([("u", t)]) + [TPK.STOP], records: [("0", record)]))
        XCTAssertEqual(c.tensors, [TensorInfo(name: "u", dtype: .U16, shape: [2, 3], byteCount: 12)])
        // Element (i, j) sits at i + 2j: [[0, 2, 4], [1, 3, 5]].
        XCTAssertEqual(try c.data(for: "u").withBytes { Array($0) }, [0, 2, 4, 1, 3, 5].flatMap { TestLE.u16($0) })
    }

    /// `module.state_dict()` pickles an OrderedDict with `_metadata` through BUILD; keys that are not
    /// strings are named as Python's `str()` spells them.
    func testStateDictMetadataAndKeyNames() throws {
        let tensor = TPK.tensor(key: "0", numel: 1, shape: [1], stride: [1])
        var p = TPK.proto() + TPK.global("collections", "OrderedDict") + [TPK.EMPTY_TUPLE, TPK.REDUCE, TPK.MARK]
        p += TPK.str("w") + tensor
        p += TPK.tuple([1, 2]) + tensor
        p += [TPK.NONE, TPK.EMPTY_DICT] + [0x47] + TestLE.u64(Double(2.5).bitPattern.byteSwapped) + tensor + [TPK.SETITEM]
        p += [TPK.SETITEMS] + TPK.dict([("_metadata", TPK.dict([("", TPK.dict([("version", TPK.int(1))]))]))]) + [TPK.BUILD, TPK.STOP]
        let c = try open(torchTestCheckpoint(p, records: [("0", floats([1]))]))
        XCTAssertEqual(c.tensors.map(\.name), ["(1, 2)", "None.2.5", "w"])
        XCTAssertEqual(c.values.count, 0)
    }

    /// `byteorder` "big": storages are swapped element by element, by the storage's item size.
    func testBigEndianStorages() throws {
        func be(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let p = TPK.proto() + TPK.dict([
            ("s", TPK.tensor(key: "0", type: "ShortStorage", numel: 3, shape: [3], stride: [1])),
            ("l", TPK.tensor(key: "1", type: "LongStorage", numel: 2, shape: [2], stride: [1])),
            ("b", TPK.tensor(key: "2", type: "ByteStorage", numel: 2, shape: [2], stride: [1])),
        ]) + [TPK.STOP]
        let records: [(String, [UInt8])] = [("0", [1, -2, 3].flatMap { be($0, 2) }), ("1", [1 << 40, -5].flatMap { be($0, 8) }), ("2", [7, 9])]
        let c = try open(torchTestCheckpoint(p, records: records, byteorder: "big"))
        XCTAssertTrue(c.isBigEndian)
        XCTAssertEqual(try c.data(for: "s").withBytes { Array($0) }, [1, -2, 3].flatMap { le($0, 2) })
        XCTAssertEqual(try c.data(for: "l").withBytes { Array($0) }, [1 << 40, -5].flatMap { le($0, 8) })
        XCTAssertEqual(try c.data(for: "b").withBytes { Array($0) }, [7, 9])
    }

    /// A deflated data.pkl whose declared size exceeds the 1 GiB cap is refused before inflating.
    func testDataPickleSizeCap() {
        let hello: [UInt8] = [203, 72, 205, 201, 201, 87, 200, 192, 32, 11, 50, 43, 146, 243, 243, 202, 0]
        var z = TestZip()
        z.items = [.init(name: "a/data.pkl", data: hello, method: 8, uncompressedSize: (1 << 30) + 1, crc: 0),
                   .init(name: "a/version", data: Array("3".utf8))]
        expectError(z.build(), ZipError.tooLarge(name: "a/data.pkl", declared: (1 << 30) + 1, limit: 1 << 30))
    }

    func testOpeningDoesNotReadTensorData() throws {
        var record = TestZip.Item(name: "archive/data/0", data: floats([1, 2, 3, 4, 5, 6]))
        record.crc = 0xDEAD_BEEF
        let bytes = torchTestCheckpoint(pickle(numel: 6, shape: [6], stride: [1]), extra: [record])
        let c = try open(bytes)
        XCTAssertEqual(c.tensors.map(\.name), ["w"])
        XCTAssertThrowsError(try c.data(for: "w")) { error in
            guard case .crcMismatch(name: "archive/data/0", expected: 0xDEAD_BEEF, actual: _)? = error as? ZipError else { return XCTFail("\(error)") }
        }
    }

    func testMissingAndMismatchedRecords() {
        expectError(torchTestCheckpoint(pickle(numel: 6, shape: [6], stride: [1])), TorchError.missingRecord(tensor: "w", record: "archive/data/0"))
        // Record size must be numel × itemsize (CVE-2026-24747 part 2): too small and too large.
        for size in [8, 88] {
            expectError(torchTestCheckpoint(pickle(numel: 6, shape: [2], stride: [1]), records: [("0", [UInt8](repeating: 0, count: size))]),
                        TorchError.recordSize(tensor: "w", record: "archive/data/0", expected: 24, actual: size))
        }
    }

    func testViewsOutsideTheStorage() {
        let record = [("0", floats([0, 1, 2, 3, 4, 5]))]
        expectError(torchTestCheckpoint(pickle(numel: 6, shape: [2, 4], stride: [4, 1]), records: record),
                    TorchError.viewOutOfStorage(tensor: "w", record: "archive/data/0", needed: 32, available: 24))
        expectError(torchTestCheckpoint(pickle(numel: 6, offset: 5, shape: [600], stride: [1]), records: record),
                    TorchError.viewOutOfStorage(tensor: "w", record: "archive/data/0", needed: 2420, available: 24))
        expectError(torchTestCheckpoint(pickle(numel: 6, offset: 6, shape: [1], stride: [1]), records: record),
                    TorchError.viewOutOfStorage(tensor: "w", record: "archive/data/0", needed: 28, available: 24))
        // Sizes and strides whose products overflow.
        expectError(torchTestCheckpoint(pickle(numel: 6, shape: [1 << 40, 1 << 40], stride: [1, 1]), records: record), TorchError.sizeOverflow(tensor: "w"))
        expectError(torchTestCheckpoint(pickle(numel: 6, shape: [2, 2], stride: [1 << 62, 1 << 62]), records: record), TorchError.sizeOverflow(tensor: "w"))
        expectError(torchTestCheckpoint(pickle(numel: 6, offset: Int(Int64.max), shape: [2], stride: [1]), records: record), TorchError.sizeOverflow(tensor: "w"))
        // An empty view with an absurd offset reads nothing (and must not overflow computing it).
        let empty = try? open(torchTestCheckpoint(pickle(numel: 6, offset: Int(Int64.max), shape: [0, 3], stride: [3, 1]), records: record))
        XCTAssertEqual(try empty?.data(for: "w").bytes.count, 0)
        XCTAssertEqual(empty?.tensors, [TensorInfo(name: "w", dtype: .F32, shape: [0, 3], byteCount: 0)])
        // Stride 0 (expand): a small repeat is materialised, a terabyte one is refused before allocating.
        let expanded = try? open(torchTestCheckpoint(pickle(numel: 6, offset: 1, shape: [3, 2], stride: [0, 1]), records: record))
        XCTAssertEqual(try expanded?.data(for: "w").withBytes { Array($0) }, floats([1, 2, 1, 2, 1, 2]))
        expectError(torchTestCheckpoint(pickle(numel: 6, shape: [1 << 38, 2], stride: [0, 1]), records: record),
                    TorchError.overlappingView(tensor: "w", record: "archive/data/0", bytes: 1 << 41, storageBytes: 24))
        // A size-1 dimension may carry any stride (never stepped); the view is still non-contiguous.
        let odd = try? open(torchTestCheckpoint(pickle(numel: 6, shape: [3, 1], stride: [2, Int(Int64.max)]), records: record))
        XCTAssertEqual(try odd?.data(for: "w").withBytes { Array($0) }, floats([0, 2, 4]))
        // Negative strides never reach the view check.
        XCTAssertThrowsError(try open(torchTestCheckpoint(pickle(numel: 6, shape: [6], stride: [-1]), records: record))) {
            guard case .badCall(_, "negative stride", _)? = $0 as? PickleError else { return XCTFail("\($0)") }
        }
    }

    func testDeflatedStorageWithLyingSize() throws {
        // The record declares 24 bytes (numel 6 × f32) but inflates to 31.
        let hello: [UInt8] = [203, 72, 205, 201, 201, 87, 200, 192, 32, 11, 50, 43, 146, 243, 243, 202, 0]
        let record = TestZip.Item(name: "archive/data/0", data: hello, method: 8, uncompressedSize: 24, crc: 0xC70A_7E89)
        let c = try open(torchTestCheckpoint(pickle(numel: 6, shape: [6], stride: [1]), extra: [record]))
        XCTAssertThrowsError(try c.data(for: "w")) { error in
            XCTAssertEqual(error as? ZipError, .inflate(name: "archive/data/0", reason: "inflates to more than the declared 24 bytes"))
        }
    }

    func testArchiveLayoutRules() {
        let p = pickle(numel: 1, shape: [1], stride: [1])
        let r = [("0", floats([1]))]
        // Two data.pkl: in two folders, and nested.
        expectError(torchTestCheckpoint(p, records: r, extra: [.init(name: "other/data.pkl", data: p)]),
                    TorchError.layout("records in two top-level folders (archive, other/data.pkl)"))
        expectError(torchTestCheckpoint(p, records: r, extra: [.init(name: "archive/x/data.pkl", data: p)]),
                    TorchError.layout("second data.pkl at archive/x/data.pkl"))
        // Same name twice is a zip error.
        XCTAssertThrowsError(try open(torchTestCheckpoint(p, records: r, extra: [.init(name: "archive/data.pkl", data: p)]))) {
            XCTAssertEqual($0 as? ZipError, .duplicateName("archive/data.pkl"))
        }
        // TorchScript.
        expectError(torchTestCheckpoint(p, records: r, extra: [.init(name: "archive/constants.pkl", data: p)]), TorchError.torchScript)
        expectError(torchTestCheckpoint(p, records: r, extra: [.init(name: "archive/code/__torch__.py", data: [0x23])]), TorchError.torchScript)
        // Root-level data.pkl, missing version, bad byteorder, zip-slip record names.
        var root = TestZip()
        root.items = [.init(name: "data.pkl", data: p)]
        expectError(root.build(), TorchError.layout("record data.pkl is not inside a top-level folder"))
        var noVersion = TestZip()
        noVersion.items = [.init(name: "a/data.pkl", data: p), .init(name: "a/data/0", data: floats([1]))]
        expectError(noVersion.build(), TorchError.layout("no version record"))
        expectError(torchTestCheckpoint(p, records: r, byteorder: "middle"), TorchError.badRecord(record: "archive/byteorder", reason: "unknown byte order \"middle\""))
        XCTAssertThrowsError(try open(torchTestCheckpoint(p, records: r, extra: [.init(name: "archive/../../evil", data: [1])]))) {
            XCTAssertEqual($0 as? ZipError, .badName("archive/../../evil"))
        }
    }

    func testMaliciousPickleInsideCheckpoint() {
        let prefix = TPK.proto() + [TPK.EMPTY_DICT, TPK.MARK] + TPK.str("state_dict")
            + TPK.dict([("w", TPK.tensor(key: "0", numel: 1, shape: [1], stride: [1]))]) + TPK.str("x")
        for (module, name) in PickleMachineTests.evil {
            let bytes = prefix + TPK.call(module, name, "id") + [TPK.SETITEMS, TPK.STOP]
            XCTAssertThrowsError(try open(torchTestCheckpoint(bytes, records: [("0", floats([1]))]))) {
                XCTAssertEqual($0 as? PickleError, .disallowedGlobal("\(module).\(name)", offset: prefix.count))
            }
        }
        // The same storage key declared with two types.
        let twice = TPK.proto() + TPK.dict([("a", TPK.tensor(key: "0", numel: 2, shape: [2], stride: [1])),
                                            ("b", TPK.tensor(key: "0", type: "HalfStorage", numel: 2, shape: [2], stride: [1]))]) + [TPK.STOP]
        XCTAssertThrowsError(try open(torchTestCheckpoint(twice, records: [("0", floats([1, 2]))]))) {
            guard case .corrupt(let why, _)? = $0 as? PickleError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("declared twice"))
        }
    }

    func testNotACheckpoint() {
        expectError([], TorchError.notACheckpoint("empty file"))
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 64)
        expectError(png, TorchError.notACheckpoint("neither a zip archive nor a legacy pickle stream"))
        // A legacy stream whose magic number is computed by a call (pytorch_magic_bypass.pt).
        let bypass = TPK.proto() + TPK.call("builtins", "eval", "0x1950a86a20f9469cfc6c") + [TPK.STOP] + TPK.proto() + TPK.int(1001) + [TPK.STOP]
        expectError(bypass, TorchError.notACheckpoint("neither a zip archive nor a legacy pickle stream"))
    }

    func testLooksLikeCheckpoint() throws {
        for name in ["pixart-original.pth", "legacy.pt", "prefixed.pt", "deflated.pt"] {
            XCTAssertTrue(TorchCheckpoint.looksLikeCheckpoint(try MappedFile(path: Self.readers.appendingPathComponent(name).path)), name)
        }
        for name in ["transformer-f16.safetensors", "expected.json"] {
            XCTAssertFalse(TorchCheckpoint.looksLikeCheckpoint(try MappedFile(path: Self.readers.appendingPathComponent(name).path)), name)
        }
        var other = TestZip()
        other.items = [.init(name: "a/b.txt", data: [1])]
        XCTAssertFalse(torchWithTestFile(other.build()) { TorchCheckpoint.looksLikeCheckpoint(try! MappedFile(path: $0)) })
    }

    func testTruncatedFixturesAreRefused() throws {
        for name in ["views.pt", "legacy.pt", "deflated.pt", "prefixed.pt"] {
            let bytes = [UInt8](try Data(contentsOf: Self.readers.appendingPathComponent(name)))
            for n in stride(from: 0, to: bytes.count, by: 37) {
                XCTAssertThrowsError(try open(Array(bytes.prefix(n))), "\(name) cut at \(n)")
            }
        }
    }

    /// A legacy stream (`_legacy_save`): magic, 1001, sys_info, object, key list, then per key an
    /// 8-byte element count and the raw bytes.
    func legacyStream(_ object: [UInt8], keys: [String], storages: [(count: Int, bytes: [UInt8])]) -> [UInt8] {
        var b: [UInt8] = [0x80, 2, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        b += TPK.proto() + TPK.int(1001) + [TPK.STOP]
        b += TPK.proto() + TPK.dict([("protocol_version", TPK.int(1001)), ("little_endian", [TPK.NEWTRUE])]) + [TPK.STOP]
        b += object
        b += TPK.proto() + [TPK.EMPTY_LIST, TPK.MARK] + keys.flatMap { TPK.str($0) } + [TPK.APPENDS, TPK.STOP]
        for s in storages { b += TestLE.u64(UInt64(s.count)) + s.bytes }
        return b
    }

    /// `{'w': _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel, view), offset, shape, stride, …)}`.
    func legacyObject(numel: Int, view: (String, Int, Int)?, offset: Int, shape: [Int]) -> [UInt8] {
        let viewBytes = view.map { [TPK.MARK] + TPK.str($0.0) + TPK.int($0.1) + TPK.int($0.2) + [TPK.TUPLE] } ?? [TPK.NONE]
        var t = TPK.global("torch._utils", "_rebuild_tensor_v2") + [TPK.MARK]
        t += [TPK.MARK] + TPK.str("storage") + TPK.global("torch", "FloatStorage") + TPK.str("0") + TPK.str("cpu") + TPK.int(numel)
        t += viewBytes + [TPK.TUPLE, TPK.BINPERSID]
        t += TPK.int(offset) + TPK.tuple(shape) + TPK.tuple([1]) + [TPK.NEWFALSE] + TPK.global("collections", "OrderedDict") + [TPK.EMPTY_TUPLE, TPK.REDUCE]
        t += [TPK.TUPLE, TPK.REDUCE]
        return TPK.proto() + TPK.dict([("w", t)]) + [TPK.STOP]
    }

    func testLegacyStorageViews() throws {
        let data = floats([0, 1, 2, 3, 4, 5, 6, 7])
        // View of elements 2..<6; the tensor takes view elements 1...2, i.e. storage elements 3 and 4.
        let c = try open(legacyStream(legacyObject(numel: 8, view: ("v", 2, 4), offset: 1, shape: [2]), keys: ["0"], storages: [(8, data)]))
        XCTAssertEqual(c.format, .legacy)
        XCTAssertEqual(try c.data(for: "w").withBytes { Array($0) }, floats([3, 4]))
        expectError(legacyStream(legacyObject(numel: 8, view: ("v", 2, 4), offset: 1, shape: [4]), keys: ["0"], storages: [(8, data)]),
                    TorchError.viewOutOfStorage(tensor: "w", record: "storage 0", needed: 20, available: 16))
        XCTAssertThrowsError(try open(legacyStream(legacyObject(numel: 8, view: ("v", 6, 4), offset: 0, shape: [1]), keys: ["0"], storages: [(8, data)]))) {
            XCTAssertEqual($0 as? PickleError, .corrupt("bad storage view metadata", offset: 176))
        }
        let plain = legacyObject(numel: 8, view: nil, offset: 0, shape: [8])
        XCTAssertEqual(try open(legacyStream(plain, keys: ["0"], storages: [(8, data)])).data(for: "w").withBytes { Array($0) }, data)
        expectError(legacyStream(plain, keys: ["0"], storages: [(7, data)]), TorchError.legacy("storage 0 holds 7 elements, its id says 8"))
        expectError(legacyStream(plain, keys: ["0", "0"], storages: [(8, data), (8, data)]), TorchError.legacy("storage 0 is listed twice"))
        expectError(legacyStream(plain, keys: [], storages: []), TorchError.legacy("storage 0 is used but not in the key list"))
        expectError(legacyStream(plain, keys: ["0", "1"], storages: [(8, data)]), TorchError.legacy("storage 1 is listed but never used"))
        expectError(legacyStream(plain, keys: ["0"], storages: [(8, Array(data.prefix(30)))]), TorchError.legacy("file ends inside storage 0"))
    }

    func testHostileNamesAndKeys() {
        // A 2000-byte dict key (bounded hashing cost) and a 5000-byte tensor path.
        let longKey = String(repeating: "k", count: 2000)
        XCTAssertThrowsError(try PickleMachine.run(TPK.proto() + TPK.dict([(longKey, TPK.int(1))]) + [TPK.STOP])) {
            XCTAssertEqual($0 as? PickleError, .corrupt("unhashable or unsupported dict key", offset: 2011))
        }
        var nested = TPK.proto()
        for _ in 0..<6 { nested += [TPK.EMPTY_DICT] + TPK.str(String(repeating: "n", count: 1000)) }
        nested += TPK.tensor(key: "0", numel: 1, shape: [1], stride: [1])
        for _ in 0..<6 { nested += [TPK.SETITEM] }
        nested += [TPK.STOP]
        expectError(torchTestCheckpoint(nested, records: [("0", floats([1]))]), TorchError.layout("value path longer than 4096 bytes"))
    }

    func testCorruptedLegacyStream() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.readers.appendingPathComponent("legacy.pt")))
        XCTAssertNoThrow(try open(bytes))
        expectError(bytes + [0], TorchError.legacy("1 bytes after the last storage"))
        // Flip bytes all over the file: refused or read, never a crash.
        for i in stride(from: 0, to: bytes.count, by: 5) {
            var bad = bytes
            bad[i] ^= 0x5A
            if let c = try? open(bad) {
                for t in c.tensors { _ = try? c.data(for: t.name) }
            }
        }
    }
}
