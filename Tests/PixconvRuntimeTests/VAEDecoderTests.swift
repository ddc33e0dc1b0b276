import Foundation
import PixconvCore
import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// Compares the Swift VAE decoder with diffusers `AutoencoderKL.decode` outputs made by
/// scripts/make_vae_reference.py (fixtures/vae/) from the tiny pipeline's VAE (fixtures/tiny-pixart-512/vae).
final class VAEDecoderTests: XCTestCase {
    /// Largest |swift − diffusers| allowed on decoder outputs (f32 both sides, different summation orders).
    static let tolerance: Float = 1e-4

    func testTinyPipelineVAEMatchesDiffusers() throws {
        let folder = vaeFixturePath("fixtures/tiny-pixart-512/vae")
        let config = try vaeLoadConfig(folder + "/config.json")
        XCTAssertEqual(config.vaeScaleFactor, 2)
        XCTAssertEqual(config.scalingFactor, 0.18215)
        let weights = Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors"))
        let decoder = try VAEDecoder(config: config, weights: weights)
        let reference = try SafetensorsFile(path: vaeFixturePath("fixtures/vae/decode.safetensors"))
        for tag in ["a", "b"] {
            let latentShape = try XCTUnwrap(reference.info(for: "latents_" + tag)?.shape)
            let (batch, height, width) = (latentShape[0], latentShape[2], latentShape[3])
            let sample = try decoder.decode(latents: try reference.vaeFloats("latents_" + tag),
                                            batch: batch, height: height, width: width)
            let expected = try reference.vaeFloats("sample_" + tag)
            XCTAssertEqual(try XCTUnwrap(reference.info(for: "sample_" + tag)?.shape),
                           [batch, 3, 2 * height, 2 * width])
            let diff = vaeMaxAbsDiff(sample, expected)
            print("vae decode \(tag) (\(batch)×4×\(height)×\(width)): max |Δ| = \(diff)")
            XCTAssertLessThanOrEqual(diff, Self.tolerance, "sample_" + tag)

            // Postprocess against diffusers VaeImageProcessor (float HWC and uint8 PIL pixels).
            let images = VAEPostprocess.floatImages(expected, batch: batch, channels: 3,
                                                    height: 2 * height, width: 2 * width)
            let expectedImages = try reference.vaeFloats("image_" + tag)
            XCTAssertEqual(images.flatMap { $0 }, expectedImages, "image_" + tag)
            let pixels = (0..<batch).flatMap {
                VAEPostprocess.rgbBytes(expected, index: $0, height: 2 * height, width: 2 * width)
            }
            XCTAssertEqual(pixels, try reference.vaeBytes("pixels_" + tag), "pixels_" + tag)
            // Our own decode, postprocessed, lands on the same pixels up to a rare rounding boundary.
            let ours = (0..<batch).flatMap {
                VAEPostprocess.rgbBytes(sample, index: $0, height: 2 * height, width: 2 * width)
            }
            let worst = zip(ours, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1)
        }
    }

    /// The last stage of the whole-pipeline references (fixtures/reference-*/): decoding `final_latents`
    /// and postprocessing gives the pipeline's `image` (output_type "np").
    func testPipelineReferenceImagesFromFinalLatents() throws {
        struct Cases: Decodable {
            struct Case: Decodable { let name: String, height: Int, width: Int, tensors: String }
            let model: String
            let cases: [Case]
        }
        for folder in ["fixtures/reference-512", "fixtures/reference-1024ms"] {
            let cases = try JSONDecoder().decode(
                Cases.self, from: Data(contentsOf: URL(fileURLWithPath: vaeFixturePath(folder + "/cases.json"))))
            let vae = vaeFixturePath("fixtures/" + cases.model + "/vae")
            let decoder = try VAEDecoder(config: try vaeLoadConfig(vae + "/config.json"), weights: Weights(
                try SafetensorsFile(path: vae + "/diffusion_pytorch_model.safetensors")))
            let f = decoder.config.vaeScaleFactor
            for c in cases.cases {
                let file = try SafetensorsFile(path: vaeFixturePath(folder + "/" + c.tensors))
                let sample = try decoder.decode(latents: try file.vaeFloats("final_latents"), batch: 1,
                                                height: c.height / f, width: c.width / f)
                let image = VAEPostprocess.floatImage(sample, index: 0, channels: 3, height: c.height, width: c.width)
                let diff = vaeMaxAbsDiff(image, try file.vaeFloats("image"))
                print("vae \(folder) \(c.name): max |Δ| image = \(diff)")
                XCTAssertLessThanOrEqual(diff, Self.tolerance, c.name)
            }
        }
    }

    /// The decoder built from the pipeline folder's `vae` component decodes like the one built by hand.
    func testFromDiffusersComponent() throws {
        let folder = try DiffusersFolder(path: vaeFixturePath("fixtures/tiny-pixart-512"))
        let component = try XCTUnwrap(folder.components.first { $0.name == "vae" })
        let decoder = try VAEDecoder(component: component)
        XCTAssertEqual(decoder.config.blockOutChannels, [32, 64])
        let reference = try SafetensorsFile(path: vaeFixturePath("fixtures/vae/decode.safetensors"))
        let sample = try decoder.decode(latents: try reference.vaeFloats("latents_b"), batch: 2, height: 6, width: 10)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(sample, try reference.vaeFloats("sample_b")), Self.tolerance)
        XCTAssertThrowsError(try VAEConfig(json: Array(#"{"block_out_channels": "wide"}"#.utf8), file: "x/config.json")) {
            XCTAssertTrue("\($0)".hasPrefix("x/config.json: "), "\($0)")
        }
    }

    /// A deeper decoder (3 levels, 3 resnets per block) saved with the pre-0.14 attention key names.
    func testLegacyAttentionNamesAndDeeperDecoder() throws {
        try vaeCheckExtraFixture("legacy", scaleFactor: 4)
    }

    /// A one-level decoder without mid-block attention (mid_block_add_attention = false, scale factor 1).
    func testDecoderWithoutMidAttention() throws {
        try vaeCheckExtraFixture("noattn", scaleFactor: 1)
    }

    /// Query-chunked attention equals the single-chunk computation.
    func testAttentionChunksAgree() throws {
        let folder = vaeFixturePath("fixtures/tiny-pixart-512/vae")
        let weights = Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors"))
        let scope = weights.scope("decoder.mid_block.attentions.0")
        let whole = try VAEAttention(weights: scope, channels: 64, groups: 32, queryChunk: 1 << 20)
        let chunked = try VAEAttention(weights: scope, channels: 64, groups: 32, queryChunk: 7)
        var rng = VAETestRandom(seed: 3)
        let n = 9 * 11
        let x = (0..<64 * n).map { _ in rng.nextFloat() * 4 - 2 }
        let diff = vaeMaxAbsDiff(whole(x, spatial: n), chunked(x, spatial: n))
        XCTAssertLessThanOrEqual(diff, 1e-5)
    }

    func testBadInputsThrow() throws {
        let folder = vaeFixturePath("fixtures/vae/noattn")
        let config = try vaeLoadConfig(folder + "/config.json")
        let source = try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors")
        let decoder = try VAEDecoder(config: config, weights: Weights(source))
        XCTAssertThrowsError(try decoder.decode(latents: [Float](repeating: 0, count: 10), batch: 1, height: 2, width: 2))
        XCTAssertThrowsError(try decoder.decode(latents: [], batch: 0, height: 2, width: 2))
        XCTAssertThrowsError(try decoder.decode(latents: [], batch: 1, height: Int.max / 2, width: 4))
        XCTAssertThrowsError(try decoder.decode(latents: [], batch: 1, height: 9000, width: 9000)) {
            XCTAssertTrue("\($0)".contains("too large"), "\($0)")
        }
        // Wrong channel count for the weights in the file: a shape error naming the tensor.
        var wide = config
        wide.blockOutChannels = [64]
        XCTAssertThrowsError(try VAEDecoder(config: wide, weights: Weights(source))) { error in
            XCTAssertTrue("\(error)".contains("decoder.conv_in.weight"), "\(error)")
        }
        // Missing tensors: the VAE's own weights under a wrong prefix.
        XCTAssertThrowsError(try VAEDecoder(config: config, weights: Weights(source, prefix: "vae.")))
        var badGroups = config
        badGroups.normNumGroups = 5
        XCTAssertThrowsError(try VAEDecoder(config: badGroups, weights: Weights(source)))
    }

    func testConfigDefaultsAndScaleFactor() throws {
        let json = """
            {"block_out_channels": [128, 256, 512, 512], "up_block_types": ["UpDecoderBlock2D",
            "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], "layers_per_block": 2,
            "sample_size": 512, "force_upcast": true}
            """
        let config = try JSONDecoder().decode(VAEConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config, VAEConfig.sdVAE)
        XCTAssertEqual(config.vaeScaleFactor, 8)
        XCTAssertTrue(config.midBlockAddAttention)
        XCTAssertNoThrow(try config.validate())
    }

    private func vaeCheckExtraFixture(_ name: String, scaleFactor: Int) throws {
        let folder = vaeFixturePath("fixtures/vae/" + name)
        let config = try vaeLoadConfig(folder + "/config.json")
        XCTAssertEqual(config.vaeScaleFactor, scaleFactor)
        let weights = Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors"))
        let decoder = try VAEDecoder(config: config, weights: weights)
        let reference = try SafetensorsFile(path: folder + "/decode.safetensors")
        let shape = try XCTUnwrap(reference.info(for: "latents")?.shape)
        let sample = try decoder.decode(latents: try reference.vaeFloats("latents"), batch: shape[0],
                                        height: shape[2], width: shape[3])
        XCTAssertEqual(try XCTUnwrap(reference.info(for: "sample")?.shape),
                       [shape[0], 3, scaleFactor * shape[2], scaleFactor * shape[3]])
        let diff = vaeMaxAbsDiff(sample, try reference.vaeFloats("sample"))
        print("vae decode \(name): max |Δ| = \(diff)")
        XCTAssertLessThanOrEqual(diff, Self.tolerance)
    }
}

func vaeFixturePath(_ relative: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(relative).path
}

func vaeLoadConfig(_ path: String) throws -> VAEConfig {
    try JSONDecoder().decode(VAEConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
}

func vaeMaxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// SplitMix64, for test inputs.
struct VAETestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

extension SafetensorsFile {
    func vaeFloats(_ name: String) throws -> [Float] { try Weights(self).floats(name) }
    func vaeBytes(_ name: String) throws -> [UInt8] { Array(try data(for: name).bytes) }
}
