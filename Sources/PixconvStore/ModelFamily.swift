import Foundation
import PixconvReaders

/// The PixArt models pixconv knows, and the one table of what each runs with when the user gives
/// no setting (`formats/families.md`). The transformer class is the same for all of them; what
/// differs is the pipeline around it (text length, bins, micro-conditions, VAE) and the sampler.
public enum ModelFamily: String, CaseIterable, Sendable, Codable {
    /// PixArt-α (256, 512, 1024-MS): `PixArtAlphaPipeline`, 120 text tokens, SD VAE.
    case alpha = "pixart-alpha"
    /// PixArt-Σ (256, 512, 1024, 2K): `PixArtSigmaPipeline`, 300 text tokens, SDXL VAE, no micro-conditions.
    case sigma = "pixart-sigma"
    /// PixArt-LCM (α 1024-MS distilled): 4 steps of LCMScheduler, no guidance.
    case lcm = "pixart-lcm"
    /// PixArt-α-DMD (512, one step): DDPMScheduler at timestep 400, no guidance.
    case dmd = "pixart-dmd"

    /// What `generate` uses for settings the user leaves out.
    public struct Defaults: Sendable, Equatable {
        /// The sampler (a CLI scheduler name) when no scheduler config names one.
        public var scheduler: String
        /// True when the family's sampler wins over a scheduler config of another class (a
        /// distilled transformer combined with a base model's folder still needs its sampler).
        public var schedulerIsPart: Bool
        public var steps: Int
        public var guidanceScale: Float
        /// diffusers' `timesteps=` argument, when the family is run with one.
        public var timesteps: [Int]?
        /// T5 tokens (diffusers' `max_sequence_length`).
        public var textLength: Int
        /// The diffusers pipeline class that runs it (`model_index.json` `_class_name`).
        public var pipelineClass: String
        /// Sample sizes (latent sides) whose aspect-ratio bins the pipeline has.
        public var binnedSampleSizes: [Int]
    }

    public var defaults: Defaults {
        switch self {
        case .alpha:
            return Defaults(scheduler: "dpm++2m", schedulerIsPart: false, steps: 20, guidanceScale: 4.5,
                            timesteps: nil, textLength: 120, pipelineClass: "PixArtAlphaPipeline",
                            binnedSampleSizes: [32, 64, 128])
        case .sigma:
            return Defaults(scheduler: "dpm++2m", schedulerIsPart: false, steps: 20, guidanceScale: 4.5,
                            timesteps: nil, textLength: 300, pipelineClass: "PixArtSigmaPipeline",
                            binnedSampleSizes: [32, 64, 128, 256])
        case .lcm:
            return Defaults(scheduler: "lcm", schedulerIsPart: true, steps: 4, guidanceScale: 0,
                            timesteps: nil, textLength: 120, pipelineClass: "PixArtAlphaPipeline",
                            binnedSampleSizes: [32, 64, 128])
        case .dmd:
            return Defaults(scheduler: "ddpm", schedulerIsPart: true, steps: 1, guidanceScale: 1,
                            timesteps: [400], textLength: 120, pipelineClass: "PixArtAlphaPipeline",
                            binnedSampleSizes: [32, 64, 128])
        }
    }

    /// The short name `--family` takes (`alpha`, `sigma`, `lcm`, `dmd`).
    public var shortName: String { String(rawValue.dropFirst("pixart-".count)) }

    /// The image sizes of the released models, by latent side (`sample_size` × 8).
    public static let releasedSizes = [256, 512, 1024, 2048]

    /// A display name with the size, e.g. `pixart-sigma-1024`, from the transformer's sample size
    /// (the image side of the real models, whose VAE factor is 8).
    public func displayName(sampleSize: Int?) -> String {
        guard let s = sampleSize, ModelFamily.releasedSizes.contains(s * 8) else { return rawValue }
        return rawValue + "-\(s * 8)"
    }
}

/// A `--family` value: a family and optionally the released image size (`sigma-1024`).
public struct FamilyChoice: Sendable, Equatable, CustomStringConvertible {
    public var family: ModelFamily
    /// The released image side (256, 512, 1024, 2048), when given.
    public var imageSize: Int?

    public init(family: ModelFamily, imageSize: Int? = nil) {
        self.family = family
        self.imageSize = imageSize
    }

    /// Parses `alpha`, `sigma-1024`, `pixart-lcm`, `pixart-sigma-2048`, `sigma-2k`, …
    public init?(parsing text: String) {
        var s = text.lowercased()
        if s.hasPrefix("pixart-") { s.removeFirst("pixart-".count) }
        var size: Int? = nil
        if let dash = s.firstIndex(of: "-") {
            var tail = String(s[s.index(after: dash)...])
            if tail.hasSuffix("-ms") { tail.removeLast(3) }
            if tail == "2k" { tail = "2048" }
            guard let n = Int(tail), ModelFamily.releasedSizes.contains(n) else { return nil }
            size = n
            s = String(s[..<dash])
        }
        guard let f = ModelFamily.allCases.first(where: { $0.shortName == s }) else { return nil }
        self.init(family: f, imageSize: size)
    }

    /// The transformer's `sample_size` this choice implies (latent side), when it names a size.
    public var sampleSize: Int? { imageSize.map { $0 / 8 } }

    public var description: String { family.rawValue + (imageSize.map { "-\($0)" } ?? "") }

    public static let help = "alpha, sigma, lcm or dmd, optionally with the image size: sigma-1024, alpha-512, sigma-2048"
}

/// How a family was found: the family and the evidence, for `inspect` and messages.
public struct FamilyDetection: Sendable, Equatable {
    public var family: ModelFamily
    /// What decided it, in words ("model_index.json names PixArtSigmaPipeline").
    public var reason: String
    /// False when nothing in the input says which family it is and α is assumed.
    public var certain: Bool

    public init(family: ModelFamily, reason: String, certain: Bool = true) {
        self.family = family
        self.reason = reason
        self.certain = certain
    }

    /// What the inputs say about their family.
    public struct Evidence: Sendable, Equatable {
        /// A family recorded by an input store (`pixconv.family`), with its reason.
        public var recorded: FamilyDetection?
        /// `model_index.json`'s `_class_name`.
        public var pipelineClass: String?
        /// The scheduler config's `_class_name`.
        public var schedulerClass: String?
        /// The VAE config's `scaling_factor`.
        public var vaeScalingFactor: Double?
        /// Whether the transformer has the micro-condition embedders (`resolution_embedder`).
        public var microConditions: Bool?
        public init() {}
    }

    /// The SDXL VAE's latent scaling (PixArt-Σ's VAE); the SD VAE of PixArt-α has 0.18215.
    public static let sdxlScalingFactor = 0.13025

    /// The family the evidence names, in this order: a recorded family; the pipeline class
    /// (PixArtSigmaPipeline); the scheduler class (LCMScheduler, DDPMScheduler); the pipeline class
    /// (PixArtAlphaPipeline); the SDXL VAE; micro-conditions (α 1024-MS: Σ has none). With none of
    /// these, α is assumed (`certain` false). `choice` (`--family`) overrides them all.
    public static func detect(_ e: Evidence, choice: FamilyChoice? = nil) -> FamilyDetection {
        if let choice { return FamilyDetection(family: choice.family, reason: "--family \(choice)") }
        if let r = e.recorded { return r }
        if e.pipelineClass == "PixArtSigmaPipeline" {
            return FamilyDetection(family: .sigma, reason: "model_index.json names PixArtSigmaPipeline")
        }
        switch e.schedulerClass {
        case "LCMScheduler": return FamilyDetection(family: .lcm, reason: "the scheduler config names LCMScheduler")
        case "DDPMScheduler": return FamilyDetection(family: .dmd, reason: "the scheduler config names DDPMScheduler")
        default: break
        }
        if e.pipelineClass == "PixArtAlphaPipeline" {
            return FamilyDetection(family: .alpha, reason: "model_index.json names PixArtAlphaPipeline")
        }
        if let s = e.vaeScalingFactor, abs(s - sdxlScalingFactor) < 1e-9 {
            return FamilyDetection(family: .sigma, reason: "the VAE is the SDXL VAE (scaling_factor 0.13025)")
        }
        if e.microConditions == true {
            return FamilyDetection(family: .alpha, reason: "the transformer has micro-conditions (PixArt-α 1024-MS)")
        }
        return FamilyDetection(
            family: .alpha, reason: "assumed: no pipeline class, scheduler or VAE config names another family (--family overrides)",
            certain: false)
    }
}

extension FamilyDetection.Evidence {
    /// The evidence of a set of components (one per kind, as `convert` and `generate` combine
    /// `--model` inputs).
    public init(components: [ComponentKind: Component]) {
        self.init()
        let transformer = components[.transformer]
        recorded = transformer?.recordedFamily
        pipelineClass = transformer?.pipelineClass
        schedulerClass = components[.scheduler]?.configJSON.flatMap { FamilyDetection.configValue($0, "_class_name")?.string }
        vaeScalingFactor = components[.vae]?.configJSON.flatMap { FamilyDetection.configValue($0, "scaling_factor")?.double }
        if let t = transformer {
            let names = Set(t.tensors.map(\.name))
            microConditions = names.contains("adaln_single.emb.resolution_embedder.linear_1.weight")
        }
    }
}

extension FamilyDetection {
    /// One top-level value of a config.json text (Python's bare `Infinity`/`NaN` accepted).
    public static func configValue(_ text: String, _ key: String) -> JSONValue? {
        var limits = StrictJSON.Limits()
        limits.allowNonFiniteNumbers = true
        guard let root = try? StrictJSON.parse(Array(text.utf8), limits: limits) else { return nil }
        return root[key]
    }

    /// Decodes the `pixconv.family` / `pixconv.family_reason` pair of a store.
    public init?(recorded name: String?, reason: String?) {
        guard let name, let family = ModelFamily(rawValue: name) else { return nil }
        self.init(family: family, reason: reason ?? "recorded in the store", certain: !(reason ?? "").hasPrefix("assumed"))
    }
}
