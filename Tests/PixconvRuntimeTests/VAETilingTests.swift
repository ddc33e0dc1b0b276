import Foundation
import PixconvCore
import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// The tiled decode against diffusers' `AutoencoderKL.enable_tiling()` decode
/// (fixtures/vae/tiled.safetensors from scripts/make_vae_tiling_reference.py, the tiny pipeline's
/// VAE: tiles of 8 latent cells every 6, blended over 4 pixels, cropped to 12).
final class VAETilingTests: XCTestCase {
    func decoder() throws -> VAEDecoder {
        let folder = vaeFixturePath("fixtures/tiny-pixart-512/vae")
        return try VAEDecoder(config: try vaeLoadConfig(folder + "/config.json"),
                              weights: Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors")))
    }

    func testTilingParametersFollowDiffusers() throws {
        let d = try decoder()
        XCTAssertEqual(d.config.sampleSize, 16)
        XCTAssertEqual(d.tiling, VAEDecoder.Tiling(latent: 8, stride: 6, sample: 16, blend: 4, keep: 12))
        XCTAssertFalse(d.tiling.applies(height: 8, width: 8))
        XCTAssertTrue(d.tiling.applies(height: 8, width: 9))
        // the SD VAE: 64-cell tiles every 48, blended over 128 pixels, 384 kept
        XCTAssertEqual(VAEDecoder.Tiling(config: .sdVAE), VAEDecoder.Tiling(latent: 64, stride: 48, sample: 512, blend: 128, keep: 384))
    }

    func testTiledDecodeMatchesDiffusers() throws {
        let d = try decoder()
        let reference = try SafetensorsFile(path: vaeFixturePath("fixtures/vae/tiled.safetensors"))
        for tag in ["a", "b"] {
            let shape = try XCTUnwrap(reference.info(for: "latents_" + tag)?.shape)
            let (batch, height, width) = (shape[0], shape[2], shape[3])
            let latents = try reference.vaeFloats("latents_" + tag)
            let tiled = try d.decode(latents: latents, batch: batch, height: height, width: width, tiled: true)
            let plain = try d.decode(latents: latents, batch: batch, height: height, width: width)
            let expectTiled = try reference.vaeFloats("tiled_" + tag), expectPlain = try reference.vaeFloats("plain_" + tag)
            let seams = vaeMaxAbsDiff(expectTiled, expectPlain)
            print("vae tiled \(tag): max |Δ tiled| = \(vaeMaxAbsDiff(tiled, expectTiled)), tiling changes the image by \(seams)")
            XCTAssertGreaterThan(seams, 100 * VAEDecoderTests.tolerance, "the fixture must exercise the blends")
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(tiled, expectTiled), VAEDecoderTests.tolerance, "tiled_" + tag)
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(plain, expectPlain), VAEDecoderTests.tolerance, "plain_" + tag)
        }
    }

    func testSampleSizeListAndMemoryEstimate() throws {
        let json = Array(#"{"block_out_channels": [128, 256, 512, 512], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], "sample_size": [768, 768]}"#.utf8)
        let config = try VAEConfig(json: json)
        XCTAssertEqual(config.sampleSize, 768)
        XCTAssertThrowsError(try VAEConfig(json: Array(#"{"sample_size": 0}"#.utf8)).validate())
        // 512 channels of f32 per output pixel for the SD VAE: 512 MiB at 512², 8 GiB at 2048²
        let d = try decoder()
        XCTAssertEqual(d.decodeBytes(height: 8, width: 8), 16 * 16 * (64 + 2 * 32) * 4)
    }
}
