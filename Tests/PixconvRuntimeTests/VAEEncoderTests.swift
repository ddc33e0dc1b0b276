import Foundation
import PixconvCore
import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// The Swift VAE encoder, stride-2 convolution, `add_noise` and img2img against diffusers outputs made
/// by scripts/make_img2img_reference.py (fixtures/img2img/), from the tiny pipeline's VAE
/// (fixtures/tiny-pixart-512/vae) and a deeper random encoder (fixtures/img2img/encoder-deep).
final class VAEEncoderTests: XCTestCase {
    /// Largest |swift − diffusers| allowed on encoder outputs (issue: encoder latents within 1e-4).
    static let tolerance: Float = 1e-4
    /// img2img images against the composed diffusers reference (issue: ≥ 60 dB, f32).
    static let minimumPSNR = 60.0

    private func file(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: vaeFixturePath("fixtures/img2img/" + name))
    }

    private func tinyEncoder() throws -> VAEEncoder {
        let folder = vaeFixturePath("fixtures/tiny-pixart-512/vae")
        return try VAEEncoder(config: try vaeLoadConfig(folder + "/config.json"),
                              weights: Weights(try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors")))
    }

    func testTinyEncoderMatchesDiffusers() throws {
        let encoder = try tinyEncoder()
        let ref = try file("encode.safetensors")
        let a = try encoder.encode(images: try ref.vaeFloats("x_a"), batch: 2, height: 16, width: 16)
        XCTAssertEqual([a.channels, a.height, a.width], [4, 8, 8])
        let da = vaeMaxAbsDiff(a.parameters, try ref.vaeFloats("moments_a"))
        let b = try encoder.encode(images: try ref.vaeFloats("x_b"), batch: 1, height: 12, width: 20)
        XCTAssertEqual([b.height, b.width], [6, 10])
        let db = vaeMaxAbsDiff(b.parameters, try ref.vaeFloats("moments_b"))
        print("vae encode: max |Δ| moments a \(da), b \(db)")
        XCTAssertLessThanOrEqual(da, Self.tolerance)
        XCTAssertLessThanOrEqual(db, Self.tolerance)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(b.mean, try ref.vaeFloats("mean_b")), Self.tolerance)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(b.std, try ref.vaeFloats("std_b")), Self.tolerance)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(b.mode(index: 0), try ref.vaeFloats("mode_b")), Self.tolerance)
        // latent_dist.sample(torch.Generator("cpu").manual_seed(5)).
        var generator = TorchGenerator(seed: 5)
        let sample = b.sample(index: 0, generator: &generator)
        let ds = vaeMaxAbsDiff(sample, try ref.vaeFloats("sample_b"))
        print("vae encode: max |Δ| sample \(ds)")
        XCTAssertLessThanOrEqual(ds, Self.tolerance)
    }

    /// Three levels (two downsamples), 8 groups, no mid attention, odd image sizes (13 × 11 → 6 × 5 → 3 × 2).
    func testDeepEncoderOddSizesMatchDiffusers() throws {
        let folder = vaeFixturePath("fixtures/img2img/encoder-deep")
        let config = try vaeLoadConfig(folder + "/config.json")
        XCTAssertFalse(config.midBlockAddAttention)
        let encoder = try VAEEncoder(config: config, weights: Weights(
            try SafetensorsFile(path: folder + "/diffusion_pytorch_model.safetensors")))
        let ref = try SafetensorsFile(path: folder + "/encode.safetensors")
        XCTAssertEqual(encoder.latentSize(height: 13, width: 11).height, 3)
        XCTAssertEqual(encoder.latentSize(height: 13, width: 11).width, 2)
        let d = try encoder.encode(images: try ref.vaeFloats("x"), batch: 1, height: 13, width: 11)
        XCTAssertEqual(try XCTUnwrap(ref.info(for: "moments")?.shape), [1, 8, 3, 2])
        let diff = vaeMaxAbsDiff(d.parameters, try ref.vaeFloats("moments"))
        print("vae encode deep: max |Δ| moments \(diff)")
        XCTAssertLessThanOrEqual(diff, Self.tolerance)
    }

    func testEncoderRejectsBadInput() throws {
        let encoder = try tinyEncoder()
        XCTAssertThrowsError(try encoder.encode(images: [Float](repeating: 0, count: 10), batch: 1, height: 4, width: 4))
        XCTAssertThrowsError(try encoder.encode(images: [], batch: 0, height: 4, width: 4))
        XCTAssertThrowsError(try encoder.encode(images: [], batch: 1, height: Int.max / 2, width: 4))
        // A VAE without encoder tensors (fixtures/vae/legacy holds only the decoder) names what is missing.
        let legacy = vaeFixturePath("fixtures/vae/legacy")
        XCTAssertThrowsError(try VAEEncoder(config: try vaeLoadConfig(legacy + "/config.json"), weights: Weights(
            try SafetensorsFile(path: legacy + "/diffusion_pytorch_model.safetensors")))) {
            XCTAssertTrue(String(describing: $0).contains("encoder.conv_in.weight"), String(describing: $0))
        }
    }

    /// Downsample2D's F.pad (0, 1, 0, 1) + stride 2, and stride 2 with padding 1, against F.conv2d and
    /// `Conv2d.reference`, in row bands of several sizes.
    func testStride2ConvMatchesTorch() throws {
        let ops = try file("ops.safetensors")
        for (tag, h, w) in [("odd", 7, 9), ("even", 8, 8)] {
            let x = try ops.vaeFloats("x_" + tag)
            let weight = try ops.vaeFloats("w_" + tag), bias = try ops.vaeFloats("b_" + tag)
            for (name, padding, end) in [("down", 0, 1), ("s2p1", 1, 1)] {
                let conv = Conv2d(weight: weight, bias: bias, inChannels: 5, outChannels: 6, kernelSize: 3,
                                  padding: padding, stride: 2, paddingEnd: end)
                XCTAssertNil(conv.engineWeights)
                let expected = try ops.vaeFloats(name + "_" + tag)
                let reference = Conv2d.reference(x, height: h, width: w, weight: weight, bias: bias, inChannels: 5,
                                                 outChannels: 6, kernelSize: 3, padding: padding, stride: 2, paddingEnd: end)
                XCTAssertLessThanOrEqual(vaeMaxAbsDiff(reference, expected), 1e-5, "reference \(name) \(tag)")
                let ow = conv.outputSize(height: h, width: w).width
                for rows in [1, 2, 3, 1000] {
                    let y = conv.apply(x, height: h, width: w, scratchFloats: rows * 5 * 9 * ow)
                    XCTAssertEqual(y.count, expected.count)
                    XCTAssertLessThanOrEqual(vaeMaxAbsDiff(y, expected), 1e-5, "\(name) \(tag) band \(rows)")
                }
            }
        }
    }

    /// Strides 2 and 3, kernels 1, 3 and 4, asymmetric padding: im2col in bands equals the direct reference.
    func testStridedRowBandsAgreeWithReference() {
        var rng = VAETestRandom(seed: 21)
        let (cin, cout, h, w) = (3, 4, 11, 10)
        let x = (0..<cin * h * w).map { _ in rng.nextFloat() * 2 - 1 }
        for (k, s, p, pe) in [(3, 2, 0, 1), (3, 2, 1, 1), (1, 2, 0, 0), (4, 3, 2, 0), (3, 3, 1, 2)] {
            let weight = (0..<cout * cin * k * k).map { _ in rng.nextFloat() - 0.5 }
            let bias = (0..<cout).map { _ in rng.nextFloat() }
            let reference = Conv2d.reference(x, height: h, width: w, weight: weight, bias: bias, inChannels: cin,
                                             outChannels: cout, kernelSize: k, padding: p, stride: s, paddingEnd: pe)
            let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: k, padding: p,
                              stride: s, paddingEnd: pe)
            let (oh, ow) = conv.outputSize(height: h, width: w)
            XCTAssertEqual(reference.count, cout * oh * ow)
            for rows in [1, 2, 5, 1000] {
                let y = conv.apply(x, height: h, width: w, scratchFloats: rows * cin * k * k * ow)
                XCTAssertLessThanOrEqual(vaeMaxAbsDiff(y, reference), 1e-5, "k \(k) s \(s) p \(p)/\(pe) band \(rows)")
            }
        }
    }

    func testImg2ImgFirstStepAsDiffusers() throws {
        // t_start = steps − min(int(steps · strength), steps), strength a Python float.
        XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: 10, strength: 0.8), 2)
        XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: 10, strength: 0.7), 3)  // 10·0.7 = 7.000000000000001
        XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: 20, strength: 0.3), 14)
        XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: 10, strength: 1), 0)
        XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: 3, strength: 0.34), 2)
        for bad in [0, -0.5, 1.01, .nan, .infinity] {
            XCTAssertThrowsError(try PixArtPipeline.img2imgFirstStep(steps: 10, strength: bad), "\(bad)")
        }
        XCTAssertThrowsError(try PixArtPipeline.img2imgFirstStep(steps: 4, strength: 0.2)) {  // int(0.8) = 0
            XCTAssertTrue(String(describing: $0).contains("no denoising step"), String(describing: $0))
        }
    }

    struct Cases: Decodable {
        struct Case: Decodable {
            let name: String, prompt: String, negative_prompt: String, seed: UInt64, steps: Int, strength: Double
            let guidance_scale: Float, scheduler: String, height: Int, width: Int, first_step: Int, tensors: String
        }
        let model: String
        let cases: [Case]
    }

    private func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: vaeFixturePath("fixtures/img2img/cases.json"))))
    }

    /// The request of an img2img case (also VAETiledEncodeTests', whose cases have these fields).
    static func request(_ c: Cases.Case, pixels: [Float]) -> GenerationRequest {
        var r = GenerationRequest(prompt: c.prompt)
        r.negativePrompt = c.negative_prompt
        r.seed = c.seed
        r.steps = c.steps
        r.guidanceScale = c.guidance_scale
        r.scheduler = c.scheduler
        r.initImage = InitImage(width: c.width, height: c.height, pixels: pixels)
        r.strength = c.strength
        return r
    }

    /// The scheduler's timesteps from t_start, `add_noise`, and the whole latent preparation (encode,
    /// sample, noise, add_noise from one generator) equal diffusers'.
    func testImg2ImgLatentsMatchDiffusers() throws {
        let all = try cases()
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [vaeFixturePath("fixtures/" + all.model)]))
        for c in all.cases {
            let ref = try file(c.tensors)
            XCTAssertEqual(try PixArtPipeline.img2imgFirstStep(steps: c.steps, strength: c.strength), c.first_step, c.name)
            var scheduler = try makeScheduler(name: c.scheduler, config: pipeline.components.schedulerConfig, steps: c.steps)
            XCTAssertEqual(Array(scheduler.timesteps[c.first_step...]), try ref.vaeFloats("timesteps"), c.name)
            try scheduler.setBeginIndex(c.first_step)
            let noisy = try scheduler.addNoise(original: try ref.vaeFloats("init_latents"), noise: try ref.vaeFloats("noise"),
                                               stepIndex: c.first_step)
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(noisy, try ref.vaeFloats("noisy_latents")), 1e-5, c.name)

            var fresh: any Scheduler = try makeScheduler(name: c.scheduler, config: pipeline.components.schedulerConfig,
                                                         steps: c.steps)
            let latents = try pipeline.img2imgLatents(
                InitImage(width: c.width, height: c.height, pixels: try ref.vaeFloats("pixels")),
                request: Self.request(c, pixels: []), scheduler: &fresh, firstStep: c.first_step,
                latentHeight: c.height / 2, latentWidth: c.width / 2)
            let d = vaeMaxAbsDiff(latents, try ref.vaeFloats("noisy_latents"))
            print("img2img \(c.name): max |Δ| noisy latents \(d)")
            XCTAssertLessThanOrEqual(d, Self.tolerance * 10, c.name)  // noise scale σ ≈ 10–150 times the encoder's error
        }
    }

    /// Whole img2img runs (the reference's preprocessed pixels in, the image out) against the composed
    /// diffusers reference.
    func testImg2ImgImagesMatchDiffusers() throws {
        let all = try cases()
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [vaeFixturePath("fixtures/" + all.model)]))
        for c in all.cases {
            let ref = try file(c.tensors)
            var steps: [Int] = []
            let images = try pipeline.generate(Self.request(c, pixels: try ref.vaeFloats("pixels"))) { step, total in
                steps.append(step)
                XCTAssertEqual(total, c.steps - c.first_step)
            }
            XCTAssertEqual(steps, Array(1...(c.steps - c.first_step)), c.name)
            let image = try XCTUnwrap(images.first)
            XCTAssertEqual([image.height, image.width], [c.height, c.width])
            let want = try ref.vaeFloats("image")
            var mse = 0.0
            for i in want.indices { mse += Double(want[i] - image.pixels[i]) * Double(want[i] - image.pixels[i]) }
            mse /= Double(want.count)
            let psnr = mse == 0 ? Double.infinity : 10 * log10(1 / mse)
            print("img2img \(c.name): PSNR \(psnr) dB, \(pipeline.timings.vaeEncode) s encode")
            XCTAssertGreaterThanOrEqual(psnr, Self.minimumPSNR, c.name)
        }
    }

    /// With a count, image i has its own generator (seed + i), as diffusers with a list of generators:
    /// the batched image for seed s + 1 equals a single run with seed s + 1.
    func testImg2ImgCountUsesOneGeneratorPerImage() throws {
        let all = try cases()
        let c = try XCTUnwrap(all.cases.first)
        let pixels = try file(c.tensors).vaeFloats("pixels")
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [vaeFixturePath("fixtures/" + all.model)]))
        var r = Self.request(c, pixels: pixels)
        r.steps = 4
        r.count = 2
        let batch = try pipeline.generate(r)
        XCTAssertEqual(batch.map(\.seed), [c.seed, c.seed + 1])
        r.count = 1
        r.seed = c.seed + 1
        let single = try XCTUnwrap(try pipeline.generate(r).first)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(batch[1].pixels, single.pixels), 1e-5)
        XCTAssertGreaterThan(vaeMaxAbsDiff(batch[0].pixels, batch[1].pixels), 1e-3)
    }

    func testImg2ImgRequestErrors() throws {
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [vaeFixturePath("fixtures/tiny-pixart-512")]))
        var r = GenerationRequest(prompt: "x")
        r.steps = 2
        r.initImage = InitImage(width: 16, height: 16, pixels: [Float](repeating: 0, count: 3 * 256))
        r.strength = 0
        XCTAssertThrowsError(try pipeline.generate(r))
        r.strength = 0.8
        r.width = 24
        XCTAssertThrowsError(try pipeline.generate(r))
        r.width = nil
        r.useResolutionBinning = true
        XCTAssertThrowsError(try pipeline.generate(r))
    }
}
