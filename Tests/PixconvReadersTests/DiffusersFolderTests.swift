import Foundation
import PixconvCore
import XCTest

@testable import PixconvReaders

final class DiffusersFolderTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try stTemporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func make(_ relative: String, _ bytes: [UInt8]) throws {
        let path = folder + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try stWrite(bytes, to: path)
    }

    func tinySafetensors(_ name: String = "w") throws -> [UInt8] {
        try SafetensorsWriter.serialize([(TensorInfo(name: name, dtype: .U8, shape: [1], byteCount: 1), [7])])
    }

    // MARK: The real tiny pipelines

    func testReadsTinyPipelineFolders() throws {
        for name in ["tiny-pixart-512", "tiny-pixart-1024ms"] {
            let root = stFixture(name)
            let pipeline = try DiffusersFolder(path: root)
            XCTAssertTrue(pipeline.isPipeline)
            XCTAssertEqual(pipeline.modelIndex?["_class_name"], "PixArtAlphaPipeline")
            XCTAssertEqual(pipeline.components.map(\.name), ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"])

            let transformer = try XCTUnwrap(pipeline["transformer"])
            XCTAssertEqual(transformer.library, "diffusers")
            XCTAssertEqual(transformer.className, "PixArtTransformer2DModel")
            XCTAssertEqual(transformer.weightsPath, root + "/transformer/diffusion_pytorch_model.safetensors")
            XCTAssertTrue(transformer.weights is SafetensorsFile)
            XCTAssertEqual(transformer.configBytes, Array(try Data(contentsOf: URL(fileURLWithPath: root + "/transformer/config.json"))))
            XCTAssertEqual(transformer.config?["num_layers"]?.int, 2)
            XCTAssertEqual(transformer.kind?.family, .pixartTransformer)
            XCTAssertEqual(transformer.kind?.pixart?.depth, 2)
            XCTAssertEqual(transformer.weights?.info(for: "pos_embed.proj.weight")?.shape, [24, 4, 2, 2])

            // The text encoder is sharded; the index and both shards are read.
            let te = try XCTUnwrap(pipeline["text_encoder"])
            XCTAssertEqual(te.className, "T5EncoderModel")
            let index = try XCTUnwrap(te.weights as? SafetensorsIndex)
            XCTAssertEqual(index.shardNames, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
            XCTAssertEqual(index.tensors.count, 21)
            XCTAssertEqual(index.info(for: "shared.weight")?.shape, [1000, 32])
            XCTAssertEqual(te.kind?.family, .t5Encoder)
            XCTAssertEqual(te.kind?.t5?.layerCount, 2)

            let vae = try XCTUnwrap(pipeline["vae"])
            XCTAssertEqual(vae.kind?.family, .vae)
            XCTAssertEqual(vae.kind?.vae?.blockOutChannels, [32, 64])

            let tokenizer = try XCTUnwrap(pipeline["tokenizer"])
            XCTAssertNil(tokenizer.weights)
            XCTAssertEqual(tokenizer.sentencePieceModel, Array(try Data(contentsOf: URL(fileURLWithPath: root + "/tokenizer/spiece.model"))))
            XCTAssertEqual(tokenizer.config?["tokenizer_class"], "T5Tokenizer")

            let scheduler = try XCTUnwrap(pipeline["scheduler"])
            XCTAssertNil(scheduler.weights)
            XCTAssertEqual(scheduler.configPath, root + "/scheduler/scheduler_config.json")
            XCTAssertEqual(scheduler.config?["algorithm_type"], "dpmsolver++")
            XCTAssertEqual(scheduler.config?["lambda_min_clipped"]?.double, -.infinity)  // Python's json writes -Infinity
        }
    }

    func testReadsSingleComponentFolders() throws {
        let transformer = try DiffusersFolder(path: stFixture("tiny-pixart-512/transformer"))
        XCTAssertFalse(transformer.isPipeline)
        XCTAssertEqual(transformer.components.map(\.name), ["transformer"])
        XCTAssertEqual(transformer.components.first?.kind?.family, .pixartTransformer)

        // Named from its config when the folder name says nothing.
        let converted = try DiffusersFolder(path: stFixture("readers/diffusers-conversion"))
        XCTAssertEqual(converted.components.map(\.name), ["transformer"])
        XCTAssertEqual(converted.components.first?.weights?.tensors.count, 57)

        let te = try DiffusersFolder(path: stFixture("tiny-pixart-512/text_encoder"))
        XCTAssertTrue(te.components.first?.weights is SafetensorsIndex)
    }

    func testPluggableWeightsOpener() throws {
        try make("model_index.json", Array(#"{"_class_name":"X","transformer":["diffusers","T"],"safety_checker":[null,null],"requires_safety_checker":true}"#.utf8))
        try make("transformer/config.json", Array("{}".utf8))
        try make("transformer/diffusion_pytorch_model.bin", [1, 2, 3])
        // Without torch support the .bin is ignored.
        let plain = try XCTUnwrap(try DiffusersFolder(path: folder)["transformer"])
        XCTAssertNil(plain.weights)
        XCTAssertEqual(plain.ignoredTorchWeights, ["diffusion_pytorch_model.bin"])
        var options = DiffusersFolder.Options()
        options.includeTorchWeights = true
        let seen = LockedPaths()
        let f = try DiffusersFolder(path: folder, options: options) { path in
            seen.append(path)
            return try SafetensorsFile(path: stFixture("readers/transformer-f16.safetensors"))
        }
        XCTAssertEqual(seen.paths, [folder + "/transformer/diffusion_pytorch_model.bin"])
        XCTAssertEqual(f.components.map(\.name), ["transformer"])
        XCTAssertEqual(f["transformer"]?.weights?.tensors.first?.dtype, .F16)
        // The default opener has no torch reader.
        XCTAssertThrowsError(try DiffusersFolder(path: folder, options: options)) {
            XCTAssertEqual($0 as? ReaderError, .unsupportedWeights(path: self.folder + "/transformer/diffusion_pytorch_model.bin"))
        }
    }

    // MARK: Rejected folders

    func testComponentNamesCannotLeaveTheFolder() throws {
        for bad in ["..", "../x", "a/b", ".hidden", "a\\\\b"] {
            try make("model_index.json", Array(#"{"\#(bad)":["diffusers","X"]}"#.utf8))
            XCTAssertThrowsError(try DiffusersFolder(path: folder), bad) { error in
                guard case .badComponent(_, _, "not a plain folder name")? = error as? ReaderError else {
                    return XCTFail("\(bad): \(error)")
                }
            }
        }
    }

    func testMissingComponentFolderAndBadIndex() throws {
        try make("model_index.json", Array(#"{"vae":["diffusers","AutoencoderKL"]}"#.utf8))
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .badComponent(_, "vae", _)? = $0 as? ReaderError else { return XCTFail("\($0)") }
        }
        try make("model_index.json", Array(#"{"vae":["diffusers"]}"#.utf8))
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .badComponent(_, "vae", "expected [library, class]")? = $0 as? ReaderError else { return XCTFail("\($0)") }
        }
        try make("model_index.json", Array(#"{"vae":["a","b"],"vae":["a","b"]}"#.utf8))
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .badConfig(_, let e)? = $0 as? ReaderError, e.kind == .duplicateKey("vae") else { return XCTFail("\($0)") }
        }
    }

    func testNotAModelFolder() throws {
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .notAModelFolder? = $0 as? ReaderError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try DiffusersFolder(path: folder + "/missing")) {
            guard case .notAModelFolder(_, "not a directory")? = $0 as? ReaderError else { return XCTFail("\($0)") }
        }
    }

    func testBadConfigIsRejected() throws {
        try make("config.json", Array(#"{"a":1} x"#.utf8))
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .badConfig(let path, let e)? = $0 as? ReaderError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, self.folder + "/config.json")
            XCTAssertEqual(e, JSONError(kind: .trailingData, offset: 8))
        }
    }

    func testAmbiguousWeightsAreRejected() throws {
        try make("config.json", Array("{}".utf8))
        try make("a.safetensors", try tinySafetensors())
        try make("b.safetensors", try tinySafetensors())
        XCTAssertThrowsError(try DiffusersFolder(path: folder)) {
            guard case .badComponent(_, _, let reason)? = $0 as? ReaderError else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("a.safetensors, b.safetensors"), reason)
        }
        // A preferred name settles it.
        try make("diffusion_pytorch_model.safetensors", try tinySafetensors("preferred"))
        XCTAssertEqual(try DiffusersFolder(path: folder).components.first?.weights?.tensors.map(\.name), ["preferred"])
    }

    // MARK: Choosing the weights file

    func testWeightsChoicePrefersNonVariantFiles() {
        typealias W = DiffusersWeights
        XCTAssertEqual(W.choose(from: ["config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"]),
                       .file("diffusion_pytorch_model.safetensors"))
        // 512x512 text encoder: fp32 shards + fp16 variant shards.
        XCTAssertEqual(W.choose(from: ["model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                                       "model.fp16-00001-of-00002.safetensors", "model.safetensors.index.fp16.json",
                                       "model.safetensors.index.json"]), .file("model.safetensors.index.json"))
        XCTAssertEqual(W.choose(from: ["model.fp16-00001-of-00002.safetensors", "model.safetensors.index.fp16.json",
                                       "model.safetensors.index.bf16.json"]), .file("model.safetensors.index.fp16.json"))
        XCTAssertEqual(W.choose(from: ["diffusion_pytorch_model.bf16.safetensors", "diffusion_pytorch_model.fp16.safetensors"]),
                       .file("diffusion_pytorch_model.fp16.safetensors"))
        XCTAssertEqual(W.choose(from: ["weights.safetensors", "config.json"]), .file("weights.safetensors"))
        XCTAssertEqual(W.choose(from: ["spiece.model", "tokenizer_config.json"]), .none)
        XCTAssertEqual(W.choose(from: ["pytorch_model.bin"]), .none)
        XCTAssertEqual(W.choose(from: ["pytorch_model.bin"], includeTorch: true), .file("pytorch_model.bin"))
        XCTAssertEqual(W.choose(from: ["PixArt-XL-2-512x512.pth"], includeTorch: true), .file("PixArt-XL-2-512x512.pth"))
        XCTAssertEqual(W.choose(from: ["model.safetensors", "pytorch_model.bin"], includeTorch: true), .file("model.safetensors"))
        XCTAssertEqual(W.choose(from: ["x.safetensors", "y.safetensors"]), .ambiguous(["x.safetensors", "y.safetensors"]))
        XCTAssertTrue(W.isShard("model-00001-of-00002.safetensors"))
        XCTAssertTrue(W.isShard("model.fp16-00001-of-00002.safetensors"))
        XCTAssertFalse(W.isShard("model-of-2.safetensors"))
        XCTAssertFalse(W.isShard("model.safetensors"))
    }
}

/// Collects paths from a `@Sendable` closure.
private final class LockedPaths: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ p: String) { lock.withLock { storage.append(p) } }
    var paths: [String] { lock.withLock { storage } }
}
