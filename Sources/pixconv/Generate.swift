import ArgumentParser
import Foundation
import PixconvImage
import PixconvRuntime
import PixconvStore

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images with the PixArt-α pipeline on the CPU, as diffusers does.",
        discussion: """
            Models: a pixconv store of any weight type, a diffusers pipeline folder, or several paths
            that together hold the transformer, T5 encoder, tokenizer and VAE (and optionally the
            scheduler config). Defaults follow diffusers and the model family the store records (or the
            inputs show; --family overrides; formats/families.md): PixArt-α and Σ 20 steps, guidance 4.5;
            LCM its lcm sampler, 4 steps, no guidance; DMD ddpm, 1 step at timestep 400, guidance 1; the
            model's native size; T5 tokens α 120, Σ 300 (--max-sequence-length); and the scheduler the
            model's scheduler_config.json names (_class_name; the family's when it has none). --timesteps T1,T2,… gives diffusers' custom timesteps (the steps are
            their count; dpm++2m, euler, lcm and ddpm take them); with one step the image is the sampler's
            predicted x0, as diffusers' PixArt pipeline does (PixArt-α-DMD: ddpm, --timesteps 400).
            lcm and ddpm draw their step noise from the same generators as the latents. --seed N gives the latents of torch.Generator("cpu").manual_seed(N),
            so the same seed gives the same image as diffusers. With --count N the images use seeds
            N, N+1, … and are written as OUT-<seed>.png. With --prompts FILE (one prompt per line)
            each prompt gives one image with the same seed, and OUT is a contact sheet of them,
            --columns per row, in the file's order, 2 white pixels between images.
            With --init-image PNG (img2img) the image is encoded by the VAE and noised to the step
            that --strength (default 0.8) picks, as diffusers' StableDiffusionImg2ImgPipeline does;
            it is resized (Lanczos, as diffusers) to --width/--height, by default its own size rounded
            down to a multiple of the VAE factor.

            Examples:
              pixconv generate --model pixart-512.q8_0.gguf --prompt "a red fox in the snow" -o fox.png
              pixconv generate --model transformer.q4_0.gguf --model t5.f16.gguf --prompt "a lighthouse at dusk" \\
                  --seed 7 --steps 14 --guidance-scale 3 --height 768 --width 1344 -o lighthouse.png
              pixconv generate --model PixArt-XL-2-512x512/ --prompt "an owl" --count 4 --scheduler ddim -o owl.png
              pixconv generate --model PixArt-LCM-XL-2-1024-MS/ --prompt "a koi pond" --scheduler lcm --steps 4 \\
                  --guidance-scale 0 -o koi.png
              pixconv generate --model PixArt-Alpha-DMD-XL-2-512x512/ --prompt "a koi pond" --scheduler ddpm \\
                  --timesteps 400 --guidance-scale 1 -o koi-dmd.png
              pixconv generate --model pixart-512.q8_0.gguf --prompt "a fox" --threads 2 --compute f32 --json -o fox.png
              pixconv generate --model demo.q8_0.gguf --prompts prompts.txt --columns 6 -o sheet.png
              pixconv generate --model pixart-512.q8_0.gguf --prompt "a watercolor fox" --init-image fox.png \\
                  --strength 0.6 -o fox-watercolor.png

            Arithmetic: by default each stored type runs its fastest kernel (Q8_0 / Q4_0: int8 dot
            products on activations rounded to int8 blocks; bf16: bf16 dot products where the CPU has
            them; f16 and f32: f32). --compute f32 multiplies in f32 from any store (exact to rounding,
            slower). The VAE's 3×3 convolutions run oneDNN's f32 convolution (--conv onednn, the
            default) or pixconv's own tiles (--conv engine: bf16 products for q8_0, q4_0 and bf16
            stores on AVX512_BF16, f32 otherwise). --verbose and --json name the kernels that ran.
            """)

    @Option(name: .customLong("model"), help: "A store, diffusers folder or checkpoint (repeatable).")
    var models: [String] = []

    @Option(help: "The prompt.")
    var prompt: String?

    @Option(help: "A text file with one prompt per line (blank lines skipped): OUT is a contact sheet of their images.")
    var prompts: String?

    @Option(help: "Images per row of the --prompts contact sheet.")
    var columns: Int = 6

    @Option(name: .customLong("negative-prompt"), help: "What to steer away from (used with guidance > 1).")
    var negativePrompt: String = ""

    @Option(help: "Seed of the CPU generator.")
    var seed: UInt64 = 0

    @Option(help: "Denoising steps (default: the model family's: 20; LCM 4; DMD 1).")
    var steps: Int?

    @Option(name: .customLong("guidance-scale"), help: "Classifier-free guidance scale; ≤ 1 turns guidance off (default: the family's: 4.5; LCM 0; DMD 1).")
    var guidanceScale: Float?

    @Option(help: "Model family, for a model whose store or folder does not say: \(FamilyChoice.help).")
    var family: String?

    @Option(name: .customLong("max-sequence-length"), help: "T5 tokens of the prompt (default: the family's: α 120, Σ 300).")
    var maxSequenceLength: Int?

    @Option(help: "Height in pixels (a multiple of 8); default: the model's native size.")
    var height: Int?

    @Option(help: "Width in pixels (a multiple of 8); default: the model's native size.")
    var width: Int?

    @Option(help: ArgumentHelp("Sampler: \(SchedulerRegistry.namesList); default: the class the model's scheduler config names."))
    var scheduler: String?

    @Option(help: "Custom timesteps, comma-separated and descending (e.g. 400): diffusers' timesteps=; sets the steps.")
    var timesteps: String?

    @Option(help: "Images to generate in one batched call (seeds seed, seed+1, …).")
    var count: Int = 1

    @Option(name: .customLong("init-image"), help: "img2img: start from this PNG (RGB, RGBA, grey, palette or 16-bit).")
    var initImage: String?

    @Option(help: "img2img: how much of the schedule to run, in (0, 1] (default 0.8).")
    var strength: Double?

    @Flag(name: .customLong("no-clean-caption"),
          help: "Do not clean the prompts as diffusers' clean_caption=True (its default) does (URLs, HTML, @handles, … removed); only lower-case and strip them.")
    var noCleanCaption = false

    @Flag(name: .customLong("resolution-binning"), help: "Snap the size to the nearest trained aspect ratio, then resize back (diffusers' default).")
    var resolutionBinning = false

    @Flag(name: .customLong("vae-tiling"), inversion: .prefixedNo,
          help: "Decode (and with --init-image encode) in diffusers' VAE tiles (enable_tiling()), or never; default: each only when its untiled run would exceed --memory-budget.")
    var vaeTiling: Bool?

    @Option(name: .customLong("memory-budget"), help: "MiB the VAE decode (or encode) may take before it tiles (default: three quarters of the available memory).")
    var memoryBudget: Int?

    @Option(name: .shortAndLong, help: "Output PNG path.")
    var output: String

    @Flag(help: "Print a JSON summary (paths, seeds, seconds per stage, peak memory, kernels).")
    var json = false

    @Option(help: "Compute threads (default: every core).")
    var threads: Int?

    @Option(help: "Arithmetic for stored weights: native (each type's fastest kernel) or f32.")
    var compute: String = "native"

    @Option(help: "The VAE's 3×3 convolutions: onednn (default where oneDNN loads) or engine (pixconv's own).")
    var conv: String?

    @Flag(help: "Print the kernels, threads and seconds per stage on stderr.")
    var verbose = false

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model") }
        guard (prompt == nil) != (prompts == nil) else { throw ValidationError("give --prompt TEXT or --prompts FILE") }
        if prompts != nil, count != 1 { throw ValidationError("--count does not go with --prompts") }
        guard columns >= 1, columns <= 1024 else { throw ValidationError("--columns must be between 1 and 1024") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let family, FamilyChoice(parsing: family) == nil {
            throw ValidationError("unknown --family '\(family)': use \(FamilyChoice.help)")
        }
        if let n = maxSequenceLength, n < 1 || n > 4096 { throw ValidationError("--max-sequence-length must be between 1 and 4096") }
        if let m = memoryBudget, m < 1 || m > 1 << 30 { throw ValidationError("--memory-budget must be between 1 and 2^30 MiB") }
        guard count >= 1, count <= 64 else { throw ValidationError("--count must be between 1 and 64") }
        if let scheduler, SchedulerRegistry.kind(named: scheduler) == nil {
            throw ValidationError("unknown --scheduler '\(scheduler)': use \(SchedulerRegistry.namesList)")
        }
        _ = try customTimesteps()
        for (name, value) in [("--height", height), ("--width", width)] {
            if let v = value, v <= 0 || v % 8 != 0 { throw ValidationError("\(name) must be a positive multiple of 8") }
        }
        if let g = guidanceScale, !g.isFinite { throw ValidationError("--guidance-scale must be a number") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        guard Engine.Compute(rawValue: compute) != nil else {
            throw ValidationError("unknown --compute '\(compute)': use native or f32")
        }
        if let conv {
            guard let c = Engine.Convolution(rawValue: conv) else {
                throw ValidationError("unknown --conv '\(conv)': use onednn or engine")
            }
            if c == .onednn, !Engine.oneDNNAvailable { throw ValidationError("--conv onednn: oneDNN's CPU engine did not start") }
        }
        if initImage == nil, strength != nil { throw ValidationError("--strength goes with --init-image") }
        if initImage != nil, prompts != nil { throw ValidationError("--init-image does not go with --prompts") }
        if initImage != nil, resolutionBinning { throw ValidationError("--init-image does not go with --resolution-binning") }
    }

    struct Summary: Encodable {
        struct Image: Encodable {
            var path: String
            var seed: UInt64
            var width: Int
            var height: Int
        }

        var images: [Image]
        var seconds: Double
        var stepSeconds: [Double]
        var loadSeconds: Double
        var textEncoderSeconds: Double
        var vaeSeconds: Double
        var vaeTiled: Bool
        /// img2img only: encoding the init image, and whether it ran in tiles.
        var vaeEncodeSeconds: Double?
        var vaeEncodeTiled: Bool?
        var peakRSSMB: Double
        var threads: Int
        var compute: String
        var kernels: [String: String]
        var cpu: [String]
        /// What ran: the model family and the settings taken from the flags or its defaults.
        var family: String
        var scheduler: String
        var steps: Int
        var guidanceScale: Float
        var timesteps: [Int]?

        enum CodingKeys: String, CodingKey {
            case images, seconds, threads, compute, kernels, cpu, family, scheduler, steps, timesteps
            case guidanceScale = "guidance_scale"
            case stepSeconds = "step_seconds", loadSeconds = "load_seconds"
            case textEncoderSeconds = "text_encoder_seconds", vaeSeconds = "vae_seconds", peakRSSMB = "peak_rss_mb"
            case vaeTiled = "vae_tiled", vaeEncodeSeconds = "vae_encode_seconds", vaeEncodeTiled = "vae_encode_tiled"
        }
    }

    func run() throws {
        let start = Date()
        Engine.setThreads(threads ?? 0)
        Engine.compute = Engine.Compute(rawValue: compute) ?? .native
        if let c = conv.flatMap(Engine.Convolution.init(rawValue:)) { Engine.convolution = c }
        Engine.resetKernelRecord()
        // img2img input first: a bad image or strength fails before any model is read.
        let initPNG = try initImage.map { try InitImageInput.read(path: $0) }
        if initImage != nil, steps != nil || timesteps != nil {
            _ = try InitImageInput.checkStrength(strength ?? 0.8, steps: ((try? customTimesteps()) ?? nil)?.count ?? steps ?? 1)
        }
        let components = try PipelineComponents.load(paths: models, family: family.flatMap(FamilyChoice.init(parsing:)))
        let pipeline = try PixArtPipeline(components: components)
        let loaded = Date()
        let settings = try resolvedSettings(components)
        let stepCount = settings.timesteps?.count ?? settings.steps
        if initImage != nil { _ = try InitImageInput.checkStrength(strength ?? 0.8, steps: stepCount) }
        var request = GenerationRequest(prompt: prompt ?? "")
        request.negativePrompt = negativePrompt
        request.cleanCaption = !noCleanCaption
        request.seed = seed
        request.steps = stepCount
        request.guidanceScale = settings.guidanceScale
        request.height = height
        request.width = width
        request.scheduler = settings.scheduler.name
        request.timesteps = settings.timesteps
        request.maxSequenceLength = maxSequenceLength
        request.count = count
        request.useResolutionBinning = resolutionBinning
        request.vaeTiling = vaeTiling
        request.memoryBudget = memoryBudget.map { $0 << 20 }
        if let prompts {
            try contactSheet(pipeline: pipeline, base: request, promptFile: prompts, start: start)
            return
        }

        var denoising = stepCount
        if let initImage, let initPNG {
            let prepared = try InitImageInput.prepare(initPNG, path: initImage, width: width, height: height,
                                                      vaeScaleFactor: components.vaeConfig.vaeScaleFactor)
            let unit = components.vaeConfig.vaeScaleFactor * components.transformerConfig.patchSize
            guard prepared.width % 8 == 0, prepared.height % 8 == 0, prepared.width % unit == 0, prepared.height % unit == 0 else {
                throw CheckFailed(description: "--init-image \(initImage): \(prepared.width)×\(prepared.height) does not fit the model "
                    + "(height and width must be multiples of 8 and of \(unit)); give --width and --height")
            }
            request.initImage = prepared
            request.strength = strength ?? 0.8
            denoising = stepCount - (try InitImageInput.checkStrength(request.strength, steps: stepCount))
        }

        let bar = ProgressBar(label: "denoising", total: denoising, enabled: !json && isatty(2) == 1)
        var stepTimes: [Double] = []
        var last = Date()
        let images = try pipeline.generate(request) { step, total in
            let now = Date()
            stepTimes.append(now.timeIntervalSince(last))
            last = now
            bar.set(step, detail: String(format: "%.2f s/step", stepTimes.last ?? 0))
            _ = total
        }
        bar.finish()

        var text: [(key: String, value: String)] = [
            ("prompt", prompt ?? ""), ("negative_prompt", negativePrompt), ("steps", String(stepCount)),
            ("guidance_scale", String(settings.guidanceScale)), ("scheduler", request.scheduler), ("generator", "pixconv \(PixconvVersion.string)"),
            ("family", components.family.family.rawValue), ("clean_caption", String(!noCleanCaption)),
        ]
        if let custom = request.timesteps { text.append(("timesteps", custom.map(String.init).joined(separator: ","))) }
        if let initImage {
            text += [("init_image", (initImage as NSString).lastPathComponent), ("strength", String(request.strength))]
        }
        for model in models {
            let name = (model as NSString).lastPathComponent
            text.append(("model", "\(name) sha256:\(try Converter.sha256(ofModel: model))"))
        }
        var written: [Summary.Image] = []
        for image in images {
            let path = images.count == 1 ? output : Generate.numbered(output, seed: image.seed)
            try PNGImage.write(path: path, rgb: image.rgb8, width: image.width, height: image.height,
                               textChunks: text + [("seed", String(image.seed))])
            written.append(.init(path: path, seed: image.seed, width: image.width, height: image.height))
        }
        let t = pipeline.timings
        let summary = Summary(images: written, seconds: Date().timeIntervalSince(start), stepSeconds: t.steps,
                              loadSeconds: loaded.timeIntervalSince(start), textEncoderSeconds: t.textEncoder,
                              vaeSeconds: t.vaeDecode, vaeTiled: t.vaeTiled,
                              vaeEncodeSeconds: initImage == nil ? nil : t.vaeEncode,
                              vaeEncodeTiled: initImage == nil ? nil : t.vaeEncodeTiled, peakRSSMB: Generate.peakRSSMB(), threads: Engine.threads,
                              compute: Engine.compute.rawValue, kernels: Engine.kernelsUsed, cpu: Engine.cpuFeatures,
                              family: components.family.family.rawValue, scheduler: request.scheduler, steps: stepCount,
                              guidanceScale: settings.guidanceScale, timesteps: request.timesteps)
        if verbose {
            let kernels = summary.kernels.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            let steps = t.steps.map { String(format: "%.2f", $0) }.joined(separator: " ")
            let lines = [
                "threads \(summary.threads), compute \(summary.compute), cpu: \(summary.cpu.joined(separator: " "))",
                "kernels: \(kernels)",
                String(format: "seconds: load %.2f, text encoder %.2f, ", summary.loadSeconds, t.textEncoder)
                    + (initImage == nil ? "" : String(format: "VAE encode %.2f, ", t.vaeEncode))
                    + String(format: "VAE decode %.2f, total %.2f", t.vaeDecode, summary.seconds),
                "seconds per step: \(steps)",
                String(format: "peak RSS %.0f MiB", summary.peakRSSMB),
            ]
            FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
        if json {
            try printJSON(summary)
        } else {
            for image in written { print("wrote \(image.path) (\(image.width)×\(image.height), seed \(image.seed))") }
        }
    }

    /// `--timesteps`: comma-separated integers in 0...99999, strictly descending (diffusers' check).
    func customTimesteps() throws -> [Int]? {
        guard let timesteps else { return nil }
        let parts = timesteps.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 0 && $0 < 100_000 }) else {
            throw ValidationError("--timesteps must be comma-separated integers ≥ 0 (e.g. 400 or 999,759,499,259)")
        }
        guard zip(values, values.dropFirst()).allSatisfy({ $0 > $1 }) else {
            throw ValidationError("--timesteps must be in descending order")
        }
        return values
    }

    /// What runs, the flags first, else the model family's defaults (formats/families.md, "The sampler a
    /// model runs with"): the sampler is --scheduler, else the family's when it is part of the family
    /// (LCM, DMD), else the class the scheduler config names, else the family's; the family's timesteps
    /// (DMD: 400) only without --steps and --timesteps and with the family's sampler.
    func resolvedSettings(_ components: PipelineComponents) throws
        -> (scheduler: SchedulerKind, steps: Int, guidanceScale: Float, timesteps: [Int]?) {
        let defaults = components.family.family.defaults
        let kind = try resolvedScheduler(components.schedulerConfig, defaults: defaults)
        var custom = try customTimesteps()
        if custom == nil, steps == nil, kind.name == defaults.scheduler { custom = defaults.timesteps }
        return (kind, steps ?? defaults.steps, guidanceScale ?? defaults.guidanceScale, custom)
    }

    /// The sampler of `resolvedSettings`; --timesteps needs a scheduler that takes them.
    func resolvedScheduler(_ config: SchedulerConfig, defaults: ModelFamily.Defaults) throws -> SchedulerKind {
        let kind: SchedulerKind
        if let scheduler, let named = SchedulerRegistry.kind(named: scheduler) {
            kind = named
        } else if let own = SchedulerRegistry.kind(named: defaults.scheduler),
                  defaults.schedulerIsPart || config.className == nil {
            kind = own
        } else {
            do { kind = try SchedulerRegistry.defaultKind(for: config) } catch { throw CheckFailed(description: "\(error)") }
        }
        if timesteps != nil, !kind.acceptsCustomTimesteps {
            let ok = SchedulerRegistry.all.filter(\.acceptsCustomTimesteps).map(\.name).joined(separator: ", ")
            throw ValidationError("--timesteps does not go with --scheduler \(kind.name) (diffusers' \(kind.className) takes no custom timesteps); use \(ok)")
        }
        return kind
    }

    /// Peak resident set of this process in MiB (getrusage: KiB on Linux, bytes on macOS).
    static func peakRSSMB() -> Double {
        var usage = rusage()
        #if os(Linux)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return 0 }
        #if os(Linux)
        return Double(usage.ru_maxrss) / 1024
        #else
        return Double(usage.ru_maxrss) / (1024 * 1024)
        #endif
    }

    /// `out.png` → `out-7.png` for seed 7.
    static func numbered(_ path: String, seed: UInt64) -> String {
        let ext = (path as NSString).pathExtension
        let stem = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return stem + "-\(seed)" + (ext.isEmpty ? ".png" : "." + ext)
    }
}
