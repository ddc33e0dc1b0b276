import Foundation
import PixconvCore
import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// The tiled VAE encode against diffusers' `AutoencoderKL.enable_tiling()` encode (`_tiled_encode`)
/// and img2img with tiling, from fixtures/vae/tiled-encode/ (scripts/make_vae_tiled_encode_reference.py,
/// the tiny pipeline's VAE: pixel tiles of 16 every 12, blended over 2 latent cells, cropped to 6).
final class VAETiledEncodeTests: XCTestCase {
    /// Largest |swift − diffusers| allowed on the moments (as the untiled encoder's).
    static let tolerance: Float = 1e-4

    private func fixture(_ name: String) -> String { vaeFixturePath("fixtures/vae/tiled-encode/" + name) }

    private func encoder() throws -> VAEEncoder {
        let folder = vaeFixturePath("fixtures/tiny-pixart-512/vae")
        return try VAEEncoder(config: try vaeLoadConfig(folder + "/config.json"),
                              weights: Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors")))
    }

    func testEncoderTilingParametersFollowDiffusers() throws {
        let e = try encoder()
        // tile_sample_min_size 16, overlap_size int(16 · 0.75), tile_latent_min_size int(16 / 2),
        // blend_extent int(8 · 0.25), row_limit 8 − 2
        XCTAssertEqual(e.tiling, VAEEncoder.Tiling(sample: 16, stride: 12, latent: 8, blend: 2, keep: 6))
        XCTAssertFalse(e.tiling.applies(height: 16, width: 16))
        XCTAssertTrue(e.tiling.applies(height: 16, width: 17))
        XCTAssertTrue(e.tiling.applies(height: 18, width: 2))
        // the SD VAE: 512-pixel tiles every 384, blended over 16 latent cells, 48 kept
        XCTAssertEqual(VAEEncoder.Tiling(config: .sdVAE), VAEEncoder.Tiling(sample: 512, stride: 384, latent: 64, blend: 16, keep: 48))
    }

    /// Three images (one a batch of two, one of odd size), each over several tiles and blends.
    func testTiledEncodeMatchesDiffusers() throws {
        let e = try encoder()
        let ref = try SafetensorsFile(path: fixture("encode.safetensors"))
        for tag in ["a", "b", "c"] {
            let shape = try XCTUnwrap(ref.info(for: "x_" + tag)?.shape)
            let (batch, height, width) = (shape[0], shape[2], shape[3])
            XCTAssertTrue(e.tiling.applies(height: height, width: width), tag)
            let x = try ref.vaeFloats("x_" + tag)
            let tiled = try e.encode(images: x, batch: batch, height: height, width: width, tiled: true)
            let want = try ref.vaeFloats("moments_" + tag)
            XCTAssertEqual([tiled.batch, 2 * tiled.channels, tiled.height, tiled.width],
                           try XCTUnwrap(ref.info(for: "moments_" + tag)?.shape), tag)
            let d = vaeMaxAbsDiff(tiled.parameters, want)
            print("vae tiled encode \(tag) \(batch)×3×\(height)×\(width): max |Δ| moments \(d)")
            XCTAssertLessThanOrEqual(d, Self.tolerance, "moments_" + tag)
            if tag == "a" {
                // the untiled encode is unchanged, and tiling really changes the moments
                let plain = try e.encode(images: x, batch: batch, height: height, width: width)
                let expectPlain = try ref.vaeFloats("plain_a")
                let seams = vaeMaxAbsDiff(want, expectPlain)
                let dp = vaeMaxAbsDiff(plain.parameters, expectPlain)
                print("vae tiled encode a: max |Δ| untiled \(dp), tiling changes the moments by \(seams)")
                XCTAssertGreaterThan(seams, 100 * Self.tolerance, "the fixture must exercise the blends")
                XCTAssertLessThanOrEqual(dp, Self.tolerance, "plain_a")
                var generator = TorchGenerator(seed: 5)
                let ds = vaeMaxAbsDiff(tiled.sample(index: 0, generator: &generator), try ref.vaeFloats("sample_a"))
                print("vae tiled encode a: max |Δ| sample \(ds)")
                XCTAssertLessThanOrEqual(ds, Self.tolerance, "sample_a")
            }
            if tag == "c" {
                let dm = vaeMaxAbsDiff(tiled.mean, try ref.vaeFloats("mean_c"))
                let ds = vaeMaxAbsDiff(tiled.std, try ref.vaeFloats("std_c"))
                print("vae tiled encode c: max |Δ| mean \(dm), std \(ds)")
                XCTAssertLessThanOrEqual(dm, Self.tolerance, "mean_c")
                XCTAssertLessThanOrEqual(ds, Self.tolerance, "std_c")
            }
        }
        // an image within one tile is encoded whole, tiled or not (diffusers' condition)
        let small = try ref.vaeFloats("x_a")
        let whole = try e.encode(images: Array(small[0..<3 * 16 * 16]), batch: 1, height: 16, width: 16)
        let asTiled = try e.encode(images: Array(small[0..<3 * 16 * 16]), batch: 1, height: 16, width: 16, tiled: true)
        XCTAssertEqual(whole.parameters, asTiled.parameters)
    }

    /// fixtures/vae/tiled-encode/cases.json: img2img cases with the fields of fixtures/img2img's.
    struct Cases: Decodable {
        let model: String
        let cases: [VAEEncoderTests.Cases.Case]
    }

    private func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("cases.json"))))
    }

    /// img2img's latents (tiled encode, sample, noise, add_noise) against diffusers with
    /// `enable_tiling()`, and the tiling decision: `vaeTiling`, else the untiled encode's estimate
    /// against `memoryBudget`.
    func testImg2ImgTiledLatentsAndBudgetDecision() throws {
        let all = try cases()
        let c = try XCTUnwrap(all.cases.first)
        let ref = try SafetensorsFile(path: fixture(c.tensors))
        let pixels = try ref.vaeFloats("pixels")
        let want = try ref.vaeFloats("noisy_latents")
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [vaeFixturePath("fixtures/" + all.model)]))
        let config = pipeline.components.vaeConfig
        // 32 × 24 pixels: f32 × (2 · 32 + 32 / 2 channels + 2 · 3); the SD VAE: 326 channels
        let estimate = VAEEncoder.encodeBytes(config: config, height: c.height, width: c.width)
        XCTAssertEqual(estimate, 24 * 32 * (2 * 32 + 16 + 2 * 3) * 4)
        XCTAssertEqual(VAEEncoder.encodeBytes(config: .sdVAE, height: 1024, width: 1024), 1304 << 20)
        func latents(tiling: Bool?, budget: Int?) throws -> [Float] {
            var r = VAEEncoderTests.request(c, pixels: [])
            r.vaeTiling = tiling
            r.memoryBudget = budget
            var scheduler: any Scheduler = try makeScheduler(name: c.scheduler, config: pipeline.components.schedulerConfig,
                                                             steps: c.steps)
            return try pipeline.img2imgLatents(InitImage(width: c.width, height: c.height, pixels: pixels), request: r,
                                               scheduler: &scheduler, firstStep: c.first_step,
                                               latentHeight: c.height / 2, latentWidth: c.width / 2)
        }
        let forced = try latents(tiling: true, budget: nil)
        let overBudget = try latents(tiling: nil, budget: estimate - 1)
        let withinBudget = try latents(tiling: nil, budget: estimate)
        let never = try latents(tiling: false, budget: 1)
        let d = vaeMaxAbsDiff(forced, want)
        print("img2img tiled \(c.name): max |Δ| noisy latents \(d); untiled encode differs by \(vaeMaxAbsDiff(never, want))")
        XCTAssertLessThanOrEqual(d, Self.tolerance * 10, "noisy latents with a tiled encode")
        XCTAssertEqual(overBudget, forced, "an estimate over the budget tiles")
        XCTAssertEqual(withinBudget, never, "an estimate within the budget does not tile")
        XCTAssertGreaterThan(vaeMaxAbsDiff(never, want), 100 * Self.tolerance, "the untiled encode must differ")

        // Through generate: the encode and the decode each compare their own estimate with the budget.
        var r = VAEEncoderTests.request(c, pixels: pixels)
        XCTAssertTrue(PixArtPipeline.tilesVAE(r, untiledBytes: 1 << 62), "no budget: three quarters of MemAvailable")
        XCTAssertFalse(PixArtPipeline.tilesVAE(r, untiledBytes: 0))
        let decodeEstimate = try VAEDecoder(config: config, weights: pipeline.components.vae)
            .decodeBytes(height: c.height / 2, width: c.width / 2)
        XCTAssertGreaterThan(decodeEstimate, estimate)
        r.steps = 4
        for (budget, encodeTiled, decodeTiled) in [(estimate - 1, true, true), (estimate, false, true),
                                                   (decodeEstimate, false, false)] {
            r.memoryBudget = budget
            _ = try pipeline.generate(r)
            XCTAssertEqual(pipeline.timings.vaeEncodeTiled, encodeTiled, "budget \(budget)")
            XCTAssertEqual(pipeline.timings.vaeTiled, decodeTiled, "budget \(budget)")
        }
        r.vaeTiling = true
        _ = try pipeline.generate(r)
        XCTAssertTrue(pipeline.timings.vaeEncodeTiled)
        XCTAssertTrue(pipeline.timings.vaeTiled)
        r.vaeTiling = false
        r.memoryBudget = 1
        _ = try pipeline.generate(r)
        XCTAssertFalse(pipeline.timings.vaeEncodeTiled)
        XCTAssertFalse(pipeline.timings.vaeTiled)
    }
}
