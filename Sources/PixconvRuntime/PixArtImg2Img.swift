import Foundation
import PixconvCore

/// An init image for img2img: pixels (3, H, W) in [-1, 1], as diffusers' `VaeImageProcessor.preprocess`
/// returns them (see `VAEPreprocess`). Its size is the output size.
public struct InitImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// CHW, RGB, roughly in [-1, 1].
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// img2img as diffusers' `StableDiffusionImg2ImgPipeline` derives it
/// (pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py: `get_timesteps`, `prepare_latents`,
/// `retrieve_latents`), applied to the PixArt-α denoising loop; diffusers has no PixArt img2img pipeline
/// (formats/img2img.md).
extension PixArtPipeline {
    /// `get_timesteps`: init_timestep = min(int(steps · strength), steps), t_start = max(steps − init_timestep, 0);
    /// the loop runs scheduler steps t_start..<steps (every sampler here has order 1). `strength` is a
    /// Python float (a Double), so int(steps · strength) rounds as Python does.
    public static func img2imgFirstStep(steps: Int, strength: Double) throws -> Int {
        guard strength > 0, strength <= 1, strength.isFinite else {
            throw RuntimeError.invalidInput("strength \(strength) is outside (0, 1]")
        }
        let initTimestep = min(Int((Double(steps) * strength).rounded(.towardZero)), steps)
        let start = max(steps - initTimestep, 0)
        guard start < steps else {
            throw RuntimeError.invalidInput(
                "strength \(strength) with \(steps) steps leaves no denoising step (int(steps × strength) is 0)")
        }
        return start
    }

    /// `prepare_latents` for `images` images of `image`: each image i has its own CPU generator
    /// (seed + i), which first draws the encoder's `latent_dist.sample` and then the noise;
    /// latents = add_noise(scaling_factor · sample, noise, timesteps[firstStep]).
    /// Sets the scheduler's begin index to `firstStep`. `generators` (seed + i) continue into the loop.
    /// `tiled`: encode with diffusers' tiling (`VAEEncoder.encode(tiled:)`); nil decides as `generate`
    /// does (`tilesVAE` on the untiled encode's estimate).
    func img2imgLatents(
        _ image: InitImage, request: GenerationRequest, scheduler: inout any Scheduler, firstStep: Int,
        latentHeight: Int, latentWidth: Int, tiled: Bool? = nil
    ) throws -> [Float] {
        var generators = (0..<request.count).map { TorchGenerator(seed: request.seed &+ UInt64($0)) }
        return try img2imgLatents(image, request: request, scheduler: &scheduler, firstStep: firstStep,
                                  latentHeight: latentHeight, latentWidth: latentWidth, generators: &generators,
                                  tiled: tiled)
    }

    func img2imgLatents(
        _ image: InitImage, request: GenerationRequest, scheduler: inout any Scheduler, firstStep: Int,
        latentHeight: Int, latentWidth: Int, generators: inout [TorchGenerator], tiled: Bool? = nil
    ) throws -> [Float] {
        let encoder = try VAEEncoder(config: components.vaeConfig, weights: components.vae)
        let tiles = tiled ?? PixArtPipeline.tilesVAE(
            request, untiledBytes: encoder.encodeBytes(height: image.height, width: image.width))
        let posterior = try encoder.encode(images: image.pixels, batch: 1, height: image.height, width: image.width,
                                           tiled: tiles)
        guard posterior.height == latentHeight, posterior.width == latentWidth,
              posterior.channels == components.transformerConfig.inChannels
        else {
            throw RuntimeError.invalidInput(
                "init image: the VAE encodes it to \(posterior.channels)×\(posterior.height)×\(posterior.width) latents, "
                    + "the transformer takes \(components.transformerConfig.inChannels)×\(latentHeight)×\(latentWidth)")
        }
        try scheduler.setBeginIndex(firstStep)
        let scaling = components.vaeConfig.scalingFactor
        var latents: [Float] = []
        latents.reserveCapacity(request.count * posterior.perImage)
        for i in 0..<request.count {
            let sample = posterior.sample(index: 0, generator: &generators[i]).map { scaling * $0 }
            let noise = generators[i].randn(count: sample.count)
            latents += try scheduler.addNoise(original: sample, noise: noise, stepIndex: firstStep)
        }
        return latents
    }
}
