import Foundation
import XCTest
import PixconvCore
import PixconvQuant
@testable import PixconvStore

/// `Converter.run` (streaming, C kernels, input hashed on another thread) against a plain
/// reference: every stored tensor equals the Swift reference encoders applied to the input's
/// f32 values, and `pixconv.sources` holds the input's SHA-256.
final class ConvertStreamingTests: XCTestCase {
    private func csFixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/readers/\(name)").path
    }

    private func csReference(_ values: [Float], as dtype: DType) -> [UInt8]? {
        switch dtype {
        case .F32: return values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        case .F16: return HalfPrecision.encodeF16Reference(values)
        case .Q8_0: return Q8_0Codec.encodeReference(values)
        case .Q4_0: return Q4_0Codec.encodeReference(values)
        case .BF16: return HalfPrecision.encodeBF16Reference(values)
        default: return nil
        }
    }

    func testStoresEqualReferenceEncodingAndRecordInputDigest() throws {
        // Original PixArt layout (fused qkv / kv split into parts) from a torch zip.
        let input = csFixture("pixart-original.pth")
        // `sha256sum fixtures/readers/pixart-original.pth` (GNU coreutils 9.1).
        let digest = "99929486462425b950aebba3402b1dbb6590ec379f079894b53deda84a6983ca"
        let folder = NSTemporaryDirectory() + "pixconv-cs-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let components = try ModelInput(path: input).components()
        guard let dit = components.first(where: { $0.kind == .transformer }) else { return XCTFail("no transformer") }
        for type in ["q8_0", "f16", "q4_0", "bf16"] {
            var options = ConvertOptions()
            options.type = type
            let output = folder + "/\(type).gguf"
            let summary = try Converter.run(inputs: [input], output: output, options: options)
            let store = try PixconvStore(path: output)
            XCTAssertNil(store.verifyAll(), type)
            let sources = try XCTUnwrap(store.sources)
            XCTAssertTrue(sources.contains("\"sha256\":\"\(digest)\""), "\(type): \(sources)")
            XCTAssertTrue(sources.contains("\"size\":160958"), sources)
            XCTAssertEqual(summary.tensorCount, dit.tensors.count)
            var dtypes = Set<DType>()
            for tensor in dit.tensors {
                let name = StoreNames.stored(tensor.name, prefix: "dit.")
                let stored = try store.data(for: name)
                dtypes.insert(stored.info.dtype)
                let want = try XCTUnwrap(csReference(try tensor.floats(), as: stored.info.dtype))
                XCTAssertEqual(stored.withBytes { Array($0) }, want, "\(type) \(name)")
            }
            XCTAssertTrue(dtypes.contains(DType(rawValue: type.uppercased()) ?? .F32), "\(type): \(dtypes)")
        }
    }

    func testSafetensorsStoreRecordsDigestWhileHasherFollowsTheConverter() throws {
        let input = csFixture("transformer-f16.safetensors")
        let folder = NSTemporaryDirectory() + "pixconv-cs-st-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let dit = try XCTUnwrap(try ModelInput(path: input).components().first { $0.kind == .transformer })
        for type in ["q8_0", "f16", "f32"] {
            var options = ConvertOptions()
            options.type = type
            let output = folder + "/\(type).gguf"
            _ = try Converter.run(inputs: [input], output: output, options: options)
            let store = try PixconvStore(path: output)
            XCTAssertNil(store.verifyAll(), type)
            // `sha256sum fixtures/readers/transformer-f16.safetensors` (GNU coreutils 9.1).
            XCTAssertTrue(try XCTUnwrap(store.sources).contains("069713d744aa5e112d212a8045db0ed2416e12c8205a5a07cde37a7a30ab8d97"))
            for tensor in dit.tensors {
                let stored = try store.data(for: StoreNames.stored(tensor.name, prefix: "dit."))
                XCTAssertEqual(stored.withBytes { Array($0) }, try XCTUnwrap(csReference(try tensor.floats(), as: stored.info.dtype)),
                               "\(type) \(tensor.name)")
            }
        }
    }

    func testHasherFollowsInOrderReadsAndFallsBackOutOfOrder() throws {
        let input = csFixture("transformer-f16.safetensors")
        let digest = "069713d744aa5e112d212a8045db0ed2416e12c8205a5a07cde37a7a30ab8d97"
        let file = try MappedFile(path: input)
        func piece(_ r: Range<Int>) -> TensorData {
            TensorData(info: TensorInfo(name: "x", dtype: .U8, shape: [r.count], byteCount: r.count), owner: file, bytes: file.slice(r))
        }
        // In order to the end, then an out-of-order read in the middle of another run.
        let inOrder = try SourceHasher(files: [input])
        for r in [1000..<5000, 5000..<9000, 20000..<70000] {
            XCTAssertTrue(inOrder.follow(piece(r)))
            inOrder.consumed(file.slice(r))
        }
        XCTAssertEqual(try inOrder.wait().map(\.hex), [digest])
        let outOfOrder = try SourceHasher(files: [input])
        XCTAssertTrue(outOfOrder.follow(piece(30000..<40000)))
        outOfOrder.consumed(file.slice(30000..<40000))
        XCTAssertFalse(outOfOrder.follow(piece(100..<200)))
        XCTAssertFalse(outOfOrder.follow(piece(50000..<60000)))
        XCTAssertEqual(try outOfOrder.wait().map(\.hex), [digest])
        // Bytes of another mapping: not followed.
        let other = try SourceHasher(files: [input])
        XCTAssertFalse(other.follow(TensorData(info: TensorInfo(name: "x", dtype: .U8, shape: [4], byteCount: 4), copying: [1, 2, 3, 4])))
        XCTAssertEqual(try other.wait().map(\.hex), [digest])
        // Cancelled before the converter's first read: the hasher stops and `wait` throws.
        let cancelled = try SourceHasher(files: [input])
        cancelled.cancel()
        XCTAssertThrowsError(try cancelled.wait())
    }

    func testHashingMatchesKnownDigestsAndStops() throws {
        let empty = NSTemporaryDirectory() + "pixconv-cs-empty-\(getpid())"
        FileManager.default.createFile(atPath: empty, contents: Data())
        defer { unlink(empty) }
        // FIPS 180-2: SHA-256 of the empty message.
        XCTAssertEqual(try Converter.sha256(ofFile: empty).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let input = csFixture("transformer-f16.safetensors")
        let got = try Converter.sha256(ofFile: input)
        XCTAssertEqual(got.size, 70376)
        // `sha256sum fixtures/readers/transformer-f16.safetensors` (GNU coreutils 9.1).
        XCTAssertEqual(got.hex, "069713d744aa5e112d212a8045db0ed2416e12c8205a5a07cde37a7a30ab8d97")
        XCTAssertThrowsError(try Converter.sha256(ofFile: input, stop: { true }))
        let hasher = try SourceHasher(files: [input, empty])
        XCTAssertEqual(hasher.placeholders.map(\.size), [70376, 0])
        XCTAssertEqual(try hasher.wait().map(\.hex), [got.hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
        XCTAssertThrowsError(try SourceHasher(files: [empty + ".missing"]))
    }
}
