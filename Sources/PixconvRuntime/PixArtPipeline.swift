import Foundation
import PixconvCore

/// diffusers `PixArtAlphaPipeline` and `PixArtSigmaPipeline` (pipelines/pixart_alpha/) on the CPU;
/// what differs between them (text length, bins, the one-step branch) follows `components.family`.
///
/// Limitations: images are generated one prompt at a time.
public final class PixArtPipeline {
    public let components: PipelineComponents
    private let tokenizer: T5Tokenizer

    /// Seconds spent in each stage of the last `generate`.
    public struct Timings: Sendable, Equatable {
        public var textEncoder: Double = 0
        public var steps: [Double] = []
        public var vaeDecode: Double = 0
        /// img2img: encoding the init image (and drawing the first latents).
        public var vaeEncode: Double = 0
        /// Whether the VAE decoded in tiles.
        public var vaeTiled = false
        /// img2img: whether the VAE encoded the init image in tiles.
        public var vaeEncodeTiled = false
    }
    public private(set) var timings = Timings()

    public init(components: PipelineComponents) throws {
        self.components = components
        self.tokenizer = try T5Tokenizer(spieceModel: components.spieceModel)
    }

    /// The size used when the request gives none.
    public var nativeSize: (height: Int, width: Int) {
        let side = components.transformerConfig.sampleSize * components.vaeConfig.vaeScaleFactor
        return (side, side)
    }

    /// Runs the pipeline. `progress(step, steps)` is called after each denoising step.
    public func generate(
        _ request: GenerationRequest, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [GeneratedImage] {
        let factor = components.vaeConfig.vaeScaleFactor
        if let image = request.initImage {
            // img2img: the init image (already resized by the caller) sets the size.
            guard (request.height ?? image.height, request.width ?? image.width) == (image.height, image.width) else {
                throw RuntimeError.invalidInput(
                    "the init image is \(image.width)×\(image.height), the request \(request.width ?? image.width)×\(request.height ?? image.height)")
            }
            guard !request.useResolutionBinning else {
                throw RuntimeError.invalidInput("resolution binning does not go with an init image")
            }
        }
        let requested = request.initImage.map { (height: $0.height, width: $0.width) }
            ?? (height: request.height ?? nativeSize.height, width: request.width ?? nativeSize.width)
        guard requested.height > 0, requested.width > 0, requested.height % 8 == 0, requested.width % 8 == 0 else {
            throw RuntimeError.invalidInput(
                "height and width must be positive multiples of 8 (got \(requested.height)×\(requested.width))")
        }
        var size = requested
        if request.useResolutionBinning {
            size = try ResolutionBins.classify(height: requested.height, width: requested.width,
                                               sampleSize: components.transformerConfig.sampleSize)
        }
        guard size.height % factor == 0, size.width % factor == 0 else {
            throw RuntimeError.invalidInput("height and width must be multiples of the VAE factor \(factor)")
        }
        let patch = components.transformerConfig.patchSize
        let latentH = size.height / factor, latentW = size.width / factor
        guard latentH % patch == 0, latentW % patch == 0 else {
            throw RuntimeError.invalidInput(
                "height and width must be multiples of \(factor * patch) for this model (got \(size.height)×\(size.width))")
        }
        guard request.steps >= 1 else { throw RuntimeError.invalidInput("steps must be at least 1") }
        guard request.count >= 1 else { throw RuntimeError.invalidInput("count must be at least 1") }

        timings = Timings()
        var clock = DispatchTime.now().uptimeNanoseconds
        func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { clock = now }
            return Double(now - clock) / 1e9
        }
        // Text: prompt and negative prompt through T5 (the negative only with guidance).
        let doGuidance = request.guidanceScale > 1
        let encoder = try T5Encoder(config: components.textEncoderConfig, weights: components.textEncoder)
        let textLength = request.maxSequenceLength ?? components.family.family.defaults.textLength
        guard textLength >= 1, textLength <= 4096 else {
            throw RuntimeError.invalidInput("max sequence length \(textLength) is not in 1...4096")
        }
        // One batched call widens each T5 layer once for both prompts.
        let texts = doGuidance ? [request.negativePrompt, request.prompt] : [request.prompt]
        let tokens = texts.map { tokenizer.encode(pixArtPreprocess($0, cleanCaption: request.cleanCaption), maxLength: textLength) }
        // Only the attended tokens: the transformer masks the padding rows out of its cross-attention.
        let hidden = try encoder.encodeAttended(batch: tokens)
        let positive = (hidden: hidden[hidden.count - 1], mask: tokens[tokens.count - 1].mask.map(Float.init))
        let negative = doGuidance ? (hidden: hidden[0], mask: tokens[0].mask.map(Float.init)) : nil
        // The text encoder is done: drop its mapped pages so they do not stay resident through
        // the denoising loop (T5-XXL is gigabytes even quantized).
        components.textEncoder.releasePages()
        timings.textEncoder = lap()

        // Latents: one CPU generator per image, seeds seed, seed+1, … (diffusers `randn_tensor` with a list).
        let images = request.count
        let channels = components.transformerConfig.inChannels
        let perImage = channels * latentH * latentW
        // `retrieve_timesteps`: custom timesteps set the step count (scheduling: formats/schedulers.md).
        var scheduler = try makeScheduler(name: request.scheduler, config: components.schedulerConfig,
                                          steps: request.steps, timesteps: request.timesteps)
        let inferenceSteps = scheduler.timesteps.count
        // The generators live through the loop: LCM and DDPM draw their step noise from them.
        var generators = (0..<images).map { TorchGenerator(seed: request.seed &+ UInt64($0)) }
        var latents = [Float]()
        // The first scheduler step: 0, or img2img's t_start (`img2imgFirstStep`).
        var firstStep = 0
        if let image = request.initImage {
            firstStep = try PixArtPipeline.img2imgFirstStep(steps: inferenceSteps, strength: request.strength)
            // The same rule as the decode's, on the untiled encode's estimate.
            let tiledEncode = PixArtPipeline.tilesVAE(
                request, untiledBytes: VAEEncoder.encodeBytes(config: components.vaeConfig, height: image.height,
                                                              width: image.width))
            timings.vaeEncodeTiled = tiledEncode
                && VAEEncoder.Tiling(config: components.vaeConfig).applies(height: image.height, width: image.width)
            latents = try img2imgLatents(image, request: request, scheduler: &scheduler, firstStep: firstStep,
                                         latentHeight: latentH, latentWidth: latentW, generators: &generators,
                                         tiled: tiledEncode)
            timings.vaeEncode = lap()
        } else {
            latents.reserveCapacity(images * perImage)
            for i in 0..<images {
                latents += generators[i].randn(count: perImage)
            }
            if scheduler.initNoiseSigma != 1 {
                for i in latents.indices { latents[i] *= scheduler.initNoiseSigma }
            }
        }

        // Conditioning batch: [uncond × images, cond × images] as the pipeline concatenates them.
        let batch = doGuidance ? 2 * images : images
        var states = [Float](), masks = [Float]()
        if let negative {
            for _ in 0..<images { states += negative.hidden; masks += negative.mask }
        }
        for _ in 0..<images { states += positive.hidden; masks += positive.mask }
        var resolution: [Float]? = nil, aspectRatio: [Float]? = nil
        if components.transformerConfig.resolvedUseAdditionalConditions {
            resolution = (0..<batch).flatMap { _ in [Float(size.height), Float(size.width)] }
            aspectRatio = [Float](repeating: Float(Double(size.height) / Double(size.width)), count: batch)
        }

        // The transformer (its workspace and cached caption keys and values) lives only through the
        // denoising loop, so the VAE stage does not hold its memory.
        do {
        let transformer = try PixArtTransformer(config: components.transformerConfig, weights: components.transformer)
        let outChannels = components.transformerConfig.resolvedOutChannels
        let plane = latentH * latentW
        for index in firstStep..<scheduler.timesteps.count {
            let t = scheduler.timesteps[index]
            let scaled = try scheduler.scaleModelInput(latents, stepIndex: index)
            let input = doGuidance ? scaled + scaled : scaled
            let out = try transformer.forward(
                latents: input, batch: batch, height: latentH, width: latentW,
                timesteps: [Float](repeating: t, count: batch),
                encoderHiddenStates: states, encoderMask: masks, textLength: textLength,
                resolution: resolution, aspectRatio: aspectRatio)
            // CFG on all output channels, then keep the first `channels` (learned-sigma split).
            var eps = [Float](repeating: 0, count: images * perImage)
            for image in 0..<images {
                for c in 0..<channels {
                    let condBase = ((doGuidance ? images + image : image) * outChannels + c) * plane
                    let uncondBase = (image * outChannels + c) * plane
                    let dst = (image * channels + c) * plane
                    for p in 0..<plane {
                        let cond = out[condBase + p]
                        if doGuidance {
                            let uncond = out[uncondBase + p]
                            eps[dst + p] = uncond + request.guidanceScale * (cond - uncond)
                        } else {
                            eps[dst + p] = cond
                        }
                    }
                }
            }
            let stepped = try scheduler.step(modelOutput: eps, stepIndex: index, sample: latents, generators: &generators)
            // diffusers: with one inference step the pipeline keeps step(...)[1], the predicted x0
            // (DPM-Solver++ returns no x0; its one step to σ = 0 is x0 already).
            // PixArtSigmaPipeline has no such branch: it keeps [0].
            let keepsX0 = inferenceSteps == 1 && components.family.family.defaults.pipelineClass == "PixArtAlphaPipeline"
            latents = keepsX0 ? (stepped.predOriginalSample ?? stepped.prevSample) : stepped.prevSample
            timings.steps.append(lap())
            progress(index + 1 - firstStep, scheduler.timesteps.count - firstStep)
        }
        }

        // Decode and post-process; the transformer's pages are no longer needed.
        components.transformer.releasePages()
        Engine.releaseScratch()
        let decoder = try VAEDecoder(config: components.vaeConfig, weights: components.vae)
        let tiled = PixArtPipeline.tilesVAE(request, untiledBytes: decoder.decodeBytes(height: latentH, width: latentW))
        timings.vaeTiled = tiled && decoder.tiling.applies(height: latentH, width: latentW)
        var decoded = try decoder.decode(latents: latents, batch: images, height: latentH, width: latentW, tiled: tiled)
        timings.vaeDecode = lap()
        var outSize = (height: latentH * factor, width: latentW * factor)
        if request.useResolutionBinning, (outSize.height, outSize.width) != (requested.height, requested.width) {
            decoded = ResolutionBins.resizeAndCrop(decoded, batch: images, channels: 3,
                                                   from: outSize, to: requested)
            outSize = requested
        }
        return (0..<images).map { i in
            let count = 3 * outSize.height * outSize.width
            let chw = Array(decoded[(i * count)..<((i + 1) * count)])
            return GeneratedImage(width: outSize.width, height: outSize.height,
                                  pixels: VAEPostprocess.floatImage(chw, index: 0, channels: 3, height: outSize.height,
                                                                    width: outSize.width),
                                  seed: request.seed &+ UInt64(i))
        }
    }

    /// Whether a VAE stage (the img2img encode, the decode) runs in tiles: `request.vaeTiling` when
    /// set, else whether its untiled estimate `untiledBytes` exceeds `request.memoryBudget`, or three
    /// quarters of the memory available now when no budget is given.
    public static func tilesVAE(_ request: GenerationRequest, untiledBytes: Int) -> Bool {
        request.vaeTiling ?? (untiledBytes > (request.memoryBudget ?? availableMemory() / 4 * 3))
    }

    /// Memory available to this process now: Linux's MemAvailable (/proc/meminfo), else the
    /// physical memory.
    public static func availableMemory() -> Int {
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let fields = line.split(separator: " ")
                if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
            }
        }
        return Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }
}
