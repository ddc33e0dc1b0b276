import Foundation
import XCTest
import PixconvCore
import PixconvQuant
@testable import PixconvStore

/// A small in-memory TensorSource of f32 tensors (names without component prefix).
private final class PSMemorySource: TensorSource, @unchecked Sendable {
    let tensors: [TensorInfo]
    private let blobs: [String: [UInt8]]

    init(_ items: [(String, [Int], [Float])]) {
        var infos: [TensorInfo] = []
        var blobs: [String: [UInt8]] = [:]
        for (name, shape, values) in items {
            var b: [UInt8] = []
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b += $0 } }
            infos.append(TensorInfo(name: name, dtype: .F32, shape: shape, byteCount: b.count))
            blobs[name] = b
        }
        tensors = infos.sorted { $0.name < $1.name }
        self.blobs = blobs
    }

    func data(for name: String) throws -> TensorData {
        guard let info = info(for: name), let b = blobs[name] else { throw StoreError.missingTensor(file: "mem", tensor: name) }
        return TensorData(info: info, copying: b)
    }
}

final class PixconvStoreTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "pixconv-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    private func values(_ n: Int, scale: Float, seed: Int) -> [Float] {
        (0..<n).map { i in Float((i * 7919 + seed * 104_729) % 2001 - 1000) / 1000 * scale }
    }

    private var source: PSMemorySource {
        PSMemorySource([
            ("dit.blocks.0.attn.to_q.weight", [64, 64], values(4096, scale: 0.2, seed: 1)),
            ("dit.blocks.0.attn.to_q.bias", [64], values(64, scale: 0.1, seed: 2)),
            ("dit.scale_shift_table", [6, 1152], values(6 * 1152, scale: 1, seed: 3)),
            ("dit.proj.weight", [64, 4, 2, 2], values(1024 + 0, scale: 1, seed: 4)),
            ("te.shared.weight", [100, 64], values(6400, scale: 3, seed: 5)),
            ("te.encoder.block.0.layer.0.SelfAttention.q.weight", [64, 64], values(4096, scale: 0.05, seed: 6)),
            ("vae.decoder.conv_in.weight", [64, 4, 3, 3], values(2304, scale: 0.3, seed: 7)),
            ("vae.decoder.mid.norm.weight", [64], values(64, scale: 1, seed: 8)),
            ("vae.decoder.up.0.weight", [40, 48], values(1920, scale: 1, seed: 9)),
        ])
    }

    private func manifest(_ policy: PrecisionPolicy) -> StoreManifest {
        StoreManifest(
            pixconvVersion: "0.1.0-test", components: ["dit", "te", "vae"],
            configs: ["dit": "{\"num_layers\": 28}", "te": "{\"d_model\": 4096}", "vae": "{\"latent_channels\": 4}"],
            spieceModel: Array(0..<200).map { UInt8($0) }, schedulerConfig: "{\"num_train_timesteps\": 1000}",
            sources: "[{\"name\":\"a.safetensors\",\"size\":1,\"sha256\":\"00\"}]",
            precisionPolicy: policy.summary, fileType: GGMLType.fileType(for: policy.target))
    }

    /// Writes the test store with `target`; returns its path and the planned infos.
    private func writeStore(_ target: DType, name: String = "store.gguf") throws -> (String, [TensorInfo]) {
        let policy = try PrecisionPolicy(target: target)
        let src = source
        let plan = try src.tensors.map { t -> TensorInfo in
            let dtype = policy.storedType(name: t.name, shape: t.shape, source: t.dtype)
            return TensorInfo(name: t.name, dtype: dtype, shape: t.shape,
                              byteCount: try Quantizer.storedByteCount(shape: t.shape, as: dtype, tensor: t.name))
        }
        let path = folder + "/" + name
        try PixconvStoreWriter.write(to: path, manifest: manifest(policy), tensors: plan, from: src)
        return (path, plan)
    }

    func testStoreRoundTripWithEveryTarget() throws {
        for target in [DType.F32, .F16, .BF16, .Q8_0, .Q4_0] {
            let (path, plan) = try writeStore(target, name: "\(target.rawValue).gguf")
            let store = try PixconvStore(path: path)
            XCTAssertEqual(store.components, ["dit", "te", "vae"])
            XCTAssertEqual(store.version, "0.1.0-test")
            XCTAssertEqual(store.config(for: "te"), "{\"d_model\": 4096}")
            XCTAssertNil(store.config(for: "unet"))
            XCTAssertEqual(store.spieceModel, Array(0..<200).map { UInt8($0) })
            XCTAssertEqual(store.schedulerConfig, "{\"num_train_timesteps\": 1000}")
            XCTAssertEqual(store.sources?.hasPrefix("[{\"name\":\"a.safetensors\""), true)
            XCTAssertEqual(store.precisionPolicy, try PrecisionPolicy(target: target).summary)
            XCTAssertEqual(store.fileType, GGMLType.fileType(for: target))
            XCTAssertEqual(store.file.alignment, 64)
            XCTAssertEqual(store.file.value(StoreKeys.quantizationVersion), .uint32(2))
            XCTAssertEqual(store.tensors.map(\.name), plan.map(\.name).sorted())
            XCTAssertEqual(store.tensors(inComponent: "vae").count, 3)
            XCTAssertNil(store.verifyAll(), "\(target)")
            // Every tensor's bytes are what the quantizer makes from the source, CRC included.
            let src = source
            for info in plan {
                XCTAssertEqual(store.info(for: info.name), info)
                let expected = try TensorEncoder.encode(try src.data(for: info.name), to: info.dtype)
                let stored = try store.data(for: info.name)
                XCTAssertEqual(Array(stored.bytes), expected, info.name)
                XCTAssertEqual(store.storedCRC(info.name), crc32(expected))
                XCTAssertTrue(try store.verifyCRC(info.name))
            }
            if let out = ProcessInfo.processInfo.environment["PIXCONV_STORE_TEST_OUT"], target == .Q8_0 {
                try? FileManager.default.removeItem(atPath: out)
                try FileManager.default.copyItem(atPath: path, toPath: out)
            }
        }
    }

    func testPolicyChoicesInAQ8Store() throws {
        let (path, _) = try writeStore(.Q8_0)
        let store = try PixconvStore(path: path)
        func dtype(_ n: String) -> DType? { store.info(for: n)?.dtype }
        XCTAssertEqual(dtype("dit.blocks.0.attn.to_q.weight"), .Q8_0)
        XCTAssertEqual(dtype("dit.blocks.0.attn.to_q.bias"), .F32)
        XCTAssertEqual(dtype("dit.scale_shift_table"), .F32)
        XCTAssertEqual(dtype("dit.proj.weight"), .F32)  // 1024 elements
        XCTAssertEqual(dtype("te.shared.weight"), .F32)
        XCTAssertEqual(dtype("vae.decoder.conv_in.weight"), .F16)  // row 3
        XCTAssertEqual(dtype("vae.decoder.mid.norm.weight"), .F32)
        XCTAssertEqual(dtype("vae.decoder.up.0.weight"), .F16)  // row 48
    }

    func testSingleByteFlipsAreAllDetected() throws {
        let small = PSMemorySource([
            ("dit.a", [2, 32], values(64, scale: 1, seed: 11)), ("dit.b", [4], values(4, scale: 1, seed: 12)),
            ("te.c", [2, 40], values(80, scale: 2, seed: 13)), ("vae.d", [1, 64], values(64, scale: 5, seed: 14)),
        ])
        let types: [String: DType] = ["dit.a": .Q4_0, "dit.b": .F32, "te.c": .F16, "vae.d": .Q8_0]
        let plan = small.tensors.map { t in
            TensorInfo(name: t.name, dtype: types[t.name]!, shape: t.shape,
                       byteCount: types[t.name]!.byteCount(elements: t.elementCount)!)
        }
        var m = manifest(try PrecisionPolicy(target: .Q4_0))
        m.spieceModel = [1, 2, 3]
        let path = folder + "/small.gguf"
        try PixconvStoreWriter.write(to: path, manifest: m, tensors: plan, from: small)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let store = try PixconvStore(path: path)
        let damaged = folder + "/damaged.gguf"
        try Data(original).write(to: URL(fileURLWithPath: damaged))
        let fd = open(damaged, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var undetected: [Int] = []
        for i in 0..<original.count {
            var flipped = original[i] ^ 0x10
            XCTAssertEqual(pwrite(fd, &flipped, 1, off_t(i)), 1)
            defer {
                var back = original[i]
                _ = pwrite(fd, &back, 1, off_t(i))
            }
            guard let s = try? PixconvStore(path: damaged, checkHeader: false) else { continue }  // rejected on open
            guard let damage = s.verifyAll() else { undetected.append(i); continue }
            // A flip inside tensor data names exactly that tensor.
            if i >= store.file.dataOffset {
                let hit = store.file.tensorsInFileOrder.first { t in
                    let at = store.file.fileOffset(of: t.name) ?? -1
                    return i >= at && i < at + t.byteCount
                }
                XCTAssertEqual(damage.tensorName, hit?.name, "byte \(i)")
                if let name = hit?.name { XCTAssertFalse(try s.verifyCRC(name)) }
            } else {
                XCTAssertEqual(damage.tensorName, nil, "byte \(i) is in the header")
                XCTAssertThrowsError(try PixconvStore(path: damaged), "byte \(i): the default open checks the header")
            }
        }
        XCTAssertEqual(undetected, [], "\(undetected.count) of \(original.count) flips undetected")
    }

    func testWriterProducesOnceAndRejectsMisSizedProducers() throws {
        let info = TensorInfo(name: "dit.w", dtype: .F32, shape: [4], byteCount: 16)
        let m = manifest(try PrecisionPolicy(target: .F32))
        let path = folder + "/bad.gguf"
        var calls = 0
        let bytes: [UInt8] = (0..<16).map { UInt8($0 * 7) }
        try PixconvStoreWriter.write(to: folder + "/once.gguf", manifest: m, tensors: [info]) { _, _, sink in
            calls += 1
            try bytes.withUnsafeBytes { try sink($0) }
        }
        XCTAssertEqual(calls, 1, "one pass: each tensor is produced once")
        let written = try PixconvStore(path: folder + "/once.gguf")
        XCTAssertEqual(written.storedCRC("dit.w"), crc32(bytes), "the header's CRC array is patched after the data")
        XCTAssertNil(written.verifyAll())

        XCTAssertThrowsError(try PixconvStoreWriter.write(to: path, manifest: m, tensors: [info]) { _, _, sink in
            try [UInt8](repeating: 0, count: 12).withUnsafeBytes { try sink($0) }
        }) { XCTAssertEqual($0 as? StoreError, .tensorSizeMismatch(file: path, tensor: "dit.w", expected: 16, actual: 12)) }

        let stray = TensorInfo(name: "unet.w", dtype: .F32, shape: [4], byteCount: 16)
        XCTAssertThrowsError(try PixconvStoreWriter.write(to: path, manifest: m, tensors: [stray]) { _, _, _ in }) {
            guard case .badWriterInput? = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testPlannedWriteFromComponentSourcesReportsOverflow() throws {
        var w = values(4096, scale: 1, seed: 21)
        w[100] = 1e6  // beyond f16
        w[300] = -7e4
        let dit = PSMemorySource([("blocks.0.w", [64, 64], w), ("blocks.0.b", [64], values(64, scale: 1, seed: 22))])
        let te = PSMemorySource([("shared.weight", [100, 64], values(6400, scale: 1, seed: 23))])
        let policy = try PrecisionPolicy(target: .F16)
        let plans = try policy.plan(component: "dit", tensors: dit.tensors) + policy.plan(component: "te", tensors: te.tensors)
        XCTAssertEqual(plans.map(\.stored.name), ["dit.blocks.0.b", "dit.blocks.0.w", "te.shared.weight"])
        XCTAssertEqual(plans.map(\.stored.dtype), [.F32, .F16, .F32])
        XCTAssertEqual(plans.map(\.reason), [.oneDimensional, .target, .embedding])
        var overflows: [(String, RangeOverflow)] = []
        let path = folder + "/planned.gguf"
        try PixconvStoreWriter.write(to: path, manifest: manifest(policy), plans: plans, sources: ["dit": dit, "te": te]) {
            overflows.append(($0.stored.name, $1))
        }
        XCTAssertEqual(overflows.map(\.0), ["dit.blocks.0.w"])
        XCTAssertEqual(overflows.first?.1, RangeOverflow(count: 2, firstIndex: 100, firstValue: 1e6))
        let store = try PixconvStore(path: path)
        XCTAssertNil(store.verifyAll())
        let stored = try dequantizeToFloat(try store.data(for: "dit.blocks.0.w"))
        XCTAssertEqual(stored[100], .infinity)
        XCTAssertEqual(stored[101], Float(Float16(w[101])))
        let long = TensorInfo(name: String(repeating: "x", count: 60), dtype: .F32, shape: [2], byteCount: 8)
        XCTAssertThrowsError(try policy.plan(component: "dit", tensors: [long]))
        // The T5 relative bias: 67-byte key, stored abbreviated, kept f32 by the embedding rule.
        let bias = TensorInfo(name: "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                              dtype: .F32, shape: [32, 64], byteCount: 8192)
        let biasPlan = try XCTUnwrap(try PrecisionPolicy(target: .Q8_0).plan(component: "te", tensors: [bias]).first)
        XCTAssertEqual(biasPlan.stored.name, "te.encoder.block.0.layer.0.SelfAttention.rel_attn_bias.weight")
        XCTAssertEqual(biasPlan.stored.dtype, .F32)
        XCTAssertEqual(biasPlan.reason, .embedding)
        XCTAssertThrowsError(try PixconvStoreWriter.write(to: path, manifest: manifest(policy), plans: plans, sources: ["dit": dit]))
    }

    func testPlainGGUFIsNotAStore() throws {
        let path = folder + "/plain.gguf"
        let w = try GGUFWriter(path: path, metadata: [("general.architecture", .string("llama"))], tensors: [])
        try w.finish()
        XCTAssertThrowsError(try PixconvStore(path: path)) {
            guard case .badMetadata(_, "general.architecture", _)? = $0 as? StoreError else { return XCTFail("\($0)") }
        }
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/store/gguf-py.gguf").path
        XCTAssertThrowsError(try PixconvStore(path: fixture)) {  // pixart, but no pixconv keys
            guard case .missingKey? = $0 as? StoreError else { return XCTFail("\($0)") }
        }
    }
}
