import Foundation
import PixconvCore
import XCTest

@testable import PixconvReaders

/// Expected figures come from the configs that diffusers / transformers wrote next to the
/// fixtures (tiny-pixart-*/…/config.json) and from `formats/pixart.md` §1 (full-size shapes).
final class ModelKindTests: XCTestCase {
    func config(_ relative: String) throws -> JSONValue {
        try StrictJSON.parse(try DiffusersFiles.read(stFixture(relative), limit: 1 << 20))
    }

    /// Tensor infos of one file of fixtures/readers/expected.json (as torch listed them).
    func referenceTensors(_ file: String) throws -> [TensorInfo] {
        let doc = try StrictJSON.parse(try DiffusersFiles.read(stFixture("readers/expected.json"), limit: 64 << 20))
        let tensors = try XCTUnwrap(doc["files"]?[file]?["tensors"]?.object)
        return try tensors.members.map { m in
            TensorInfo(name: m.key, dtype: try XCTUnwrap(DType(rawValue: m.value["dtype"]?.string ?? "")),
                       shape: m.value["shape"]?.array?.compactMap(\.int) ?? [], byteCount: m.value["bytes"]?.int ?? -1)
        }.sorted { $0.name < $1.name }
    }

    func assertPixArt(_ info: ModelKind.PixArt?, matches cfg: JSONValue, sampleFromConfig: Bool = true,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try XCTUnwrap(info, file: file, line: line)
        XCTAssertEqual(p.depth, cfg["num_layers"]?.int, file: file, line: line)
        XCTAssertEqual(p.hiddenSize, (cfg["num_attention_heads"]?.int ?? 0) * (cfg["attention_head_dim"]?.int ?? 0), file: file, line: line)
        XCTAssertEqual(p.captionChannels, cfg["caption_channels"]?.int, file: file, line: line)
        XCTAssertEqual(p.patchSize, cfg["patch_size"]?.int, file: file, line: line)
        XCTAssertEqual(p.inChannels, cfg["in_channels"]?.int, file: file, line: line)
        XCTAssertEqual(p.outChannels, cfg["out_channels"]?.int, file: file, line: line)
        XCTAssertEqual(p.sampleSize, cfg["sample_size"]?.int, file: file, line: line)
        // diffusers: use_additional_conditions = (sample_size == 128) when the config leaves it null.
        XCTAssertEqual(p.multiScale, cfg["sample_size"]?.int == 128, file: file, line: line)
    }

    func testDiffusersTransformers() throws {
        for name in ["tiny-pixart-512", "tiny-pixart-1024ms"] {
            let cfg = try config(name + "/transformer/config.json")
            let file = try SafetensorsFile(path: stFixture(name + "/transformer/diffusion_pytorch_model.safetensors"))
            let kind = ModelKind.detect(file.tensors, config: cfg)
            XCTAssertEqual(kind.family, .pixartTransformer)
            XCTAssertEqual(kind.layout, .diffusers)
            XCTAssertEqual(kind.prefix, "")
            XCTAssertEqual(kind.pixart?.headCount, cfg["num_attention_heads"]?.int)
            XCTAssertEqual(kind.pixart?.headsFromConfig, true)
            try assertPixArt(kind.pixart, matches: cfg)
            // Without a config: no sample size, and 24 / 72 heads is no whole number.
            let bare = ModelKind.detect(file.tensors)
            XCTAssertNil(bare.pixart?.sampleSize)
            XCTAssertNil(bare.pixart?.headCount)
        }
    }

    func testOriginalLayoutUnderStateDictPrefix() throws {
        for (file, pipeline) in [("pixart-original.pth", "tiny-pixart-512"), ("pixart-original-ms.pth", "tiny-pixart-1024ms")] {
            let kind = ModelKind.detect(try referenceTensors(file))
            XCTAssertEqual(kind.family, .pixartTransformer, file)
            XCTAssertEqual(kind.layout, .original, file)
            XCTAssertEqual(kind.prefix, "state_dict.", file)
            XCTAssertEqual(kind.pixart?.hasNullCaption, true)
            // The original checkpoints were made from the same tiny model as the pipelines.
            try assertPixArt(kind.pixart, matches: try config(pipeline + "/transformer/config.json"))
        }
        XCTAssertEqual(ModelKind.detect(try referenceTensors("pixart-original-ms.pth")).otherPrefixes, ["state_dict_ema."])
    }

    func testDiffusersConversionsOfTheOriginals() throws {
        for name in ["diffusers-conversion", "diffusers-conversion-ms"] {
            let cfg = try config("readers/\(name)/config.json")
            let file = try SafetensorsFile(path: stFixture("readers/\(name)/diffusion_pytorch_model.safetensors"))
            let kind = ModelKind.detect(file.tensors, config: cfg)
            XCTAssertEqual(kind.layout, .diffusers)
            try assertPixArt(kind.pixart, matches: cfg)
        }
    }

    func testT5Encoder() throws {
        let cfg = try config("tiny-pixart-512/text_encoder/config.json")
        let index = try SafetensorsIndex(path: stFixture("tiny-pixart-512/text_encoder/model.safetensors.index.json"))
        let kind = ModelKind.detect(index.tensors, config: cfg)
        XCTAssertEqual(kind.family, .t5Encoder)
        let t5 = try XCTUnwrap(kind.t5)
        XCTAssertEqual(t5.modelDim, cfg["d_model"]?.int)
        XCTAssertEqual(t5.layerCount, cfg["num_layers"]?.int)
        XCTAssertEqual(t5.headCount, cfg["num_heads"]?.int)
        XCTAssertEqual(t5.keyValueDim, cfg["d_kv"]?.int)
        XCTAssertEqual(t5.feedForwardDim, cfg["d_ff"]?.int)
        XCTAssertEqual(t5.vocabSize, cfg["vocab_size"]?.int)
        XCTAssertEqual(t5.gated, cfg["is_gated_act"]?.bool)
        XCTAssertEqual(t5.relativeAttentionBuckets, cfg["relative_attention_num_buckets"]?.int)
        XCTAssertFalse(t5.hasDecoder)
        // Heads and d_kv also follow from shapes alone (relative_attention_bias is [buckets, heads]).
        XCTAssertEqual(ModelKind.detect(index.tensors).t5, t5)
    }

    func testVAE() throws {
        let cfg = try config("tiny-pixart-512/vae/config.json")
        let file = try SafetensorsFile(path: stFixture("tiny-pixart-512/vae/diffusion_pytorch_model.safetensors"))
        let kind = ModelKind.detect(file.tensors, config: cfg)
        XCTAssertEqual(kind.family, .vae)
        XCTAssertEqual(kind.layout, .diffusers)
        let vae = try XCTUnwrap(kind.vae)
        XCTAssertEqual(vae.latentChannels, cfg["latent_channels"]?.int)
        XCTAssertEqual(vae.blockOutChannels, cfg["block_out_channels"]?.array?.compactMap(\.int))
        XCTAssertEqual(vae.layersPerBlock, cfg["layers_per_block"]?.int)
        XCTAssertEqual(vae.outChannels, cfg["out_channels"]?.int)
        XCTAssertEqual(vae.attentionNaming, "to_q")
        XCTAssertTrue(vae.hasEncoder && vae.hasDecoder)
    }

    /// Full-size shapes from `formats/pixart.md` §1 (PixArt-XL-2-1024-MS), original layout.
    func testFullSizeOriginalShapes() {
        var infos: [TensorInfo] = []
        func add(_ name: String, _ shape: [Int]) {
            infos.append(TensorInfo(name: name, dtype: .F32, shape: shape, byteCount: 4 * shape.reduce(1, *)))
        }
        add("x_embedder.proj.weight", [1152, 4, 2, 2])
        add("t_block.1.weight", [6912, 1152])
        add("y_embedder.y_proj.fc1.weight", [1152, 4096])
        add("pos_embed", [1, 4096, 1152])
        add("final_layer.linear.weight", [32, 1152])
        add("csize_embedder.mlp.0.weight", [384, 256])
        for i in 0..<28 {
            add("blocks.\(i).attn.qkv.weight", [3456, 1152])
            add("blocks.\(i).mlp.fc1.weight", [4608, 1152])
        }
        let kind = ModelKind.detect(infos.sorted { $0.name < $1.name })
        XCTAssertEqual(kind.pixart, ModelKind.PixArt(
            depth: 28, hiddenSize: 1152, headCount: 16, headsFromConfig: false, captionChannels: 4096, patchSize: 2,
            inChannels: 4, outChannels: 8, sampleSize: 128, multiScale: true, mlpHiddenSize: 4608, hasNullCaption: false))
        XCTAssertEqual(kind.prefix, "")
    }

    func testLDMLayoutVAEAndUnknown() {
        var infos: [TensorInfo] = []
        func add(_ name: String, _ shape: [Int]) {
            infos.append(TensorInfo(name: name, dtype: .F32, shape: shape, byteCount: 4 * shape.reduce(1, *)))
        }
        // LDM names (first_stage_model.*): decoder.up.i is level i, shallow → deep.
        let p = "first_stage_model."
        add(p + "post_quant_conv.weight", [4, 4, 1, 1])
        add(p + "decoder.conv_in.weight", [512, 4, 3, 3])
        for (i, c) in [128, 256, 512, 512].enumerated() {
            for j in 0..<3 {
                add(p + "decoder.up.\(i).block.\(j).conv1.weight", [c, c, 3, 3])
                add(p + "decoder.up.\(i).block.\(j).conv2.weight", [c, c, 3, 3])
            }
        }
        add(p + "decoder.mid.attn_1.q.weight", [512, 512, 1, 1])
        add(p + "decoder.conv_out.weight", [3, 128, 3, 3])
        let kind = ModelKind.detect(infos.sorted { $0.name < $1.name })
        XCTAssertEqual(kind.family, .vae)
        XCTAssertEqual(kind.layout, .original)
        XCTAssertEqual(kind.prefix, p)
        XCTAssertEqual(kind.vae, ModelKind.VAE(latentChannels: 4, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2,
                                               outChannels: 3, hasEncoder: false, hasDecoder: true, attentionNaming: "q"))

        let other = ModelKind.detect([TensorInfo(name: "fc.weight", dtype: .F32, shape: [2, 2], byteCount: 16)])
        XCTAssertEqual(other.family, .unknown)
        XCTAssertEqual(other.parameterCount, 4)
    }

    func testEncodesSnakeCaseJSON() throws {
        let file = try SafetensorsFile(path: stFixture("tiny-pixart-512/transformer/diffusion_pytorch_model.safetensors"))
        let kind = ModelKind.detect(file.tensors, config: try config("tiny-pixart-512/transformer/config.json"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try StrictJSON.parse(Array(try encoder.encode(kind)))
        XCTAssertEqual(json["family"], "pixart_transformer")
        XCTAssertEqual(json["layout"], "diffusers")
        XCTAssertEqual(json["pixart"]?["hidden_size"]?.int, 24)
        XCTAssertEqual(json["pixart"]?["num_heads"]?.int, 3)
        XCTAssertEqual(json["tensor_count"]?.int, file.tensors.count)
        XCTAssertEqual(try JSONDecoder().decode(ModelKind.self, from: try encoder.encode(kind)), kind)
    }
}
