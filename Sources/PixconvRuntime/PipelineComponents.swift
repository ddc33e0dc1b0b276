import Foundation
import PixconvCore
import PixconvReaders
import PixconvStore

/// Everything the PixArt-α pipeline needs, gathered from one or more `--model` paths: stores,
/// diffusers folders, single files or original checkpoints. Weights stay where they are (mapped)
/// and are widened to f32 layer by layer when a model runs.
public struct PipelineComponents: @unchecked Sendable {  // sources are immutable after load
    public var transformerConfig: PixArtConfig
    public var transformer: Weights
    public var textEncoderConfig: T5Config
    public var textEncoder: Weights
    public var vaeConfig: VAEConfig
    public var vae: Weights
    public var spieceModel: [UInt8]
    public var schedulerConfig: SchedulerConfig
    /// The model paths, for PNG metadata.
    public var paths: [String]
    /// Which PixArt this is (α, Σ, LCM, DMD) and why: its defaults are `family.family.defaults`.
    public var family: FamilyDetection

    /// Loads and combines the components of `paths`; a missing component is an error naming it.
    /// `family` (`--family`) overrides the detected family and gives an original-layout checkpoint its size.
    public static func load(paths: [String], family choice: FamilyChoice? = nil) throws -> PipelineComponents {
        var found: [ComponentKind: Component] = [:]
        // A path holding only a scheduler config (e.g. fixtures/tiny-pixart-lcm) replaces the scheduler
        // of the other paths, in any order: how a user swaps samplers as diffusers' `pipe.scheduler = …`.
        var schedulerOverride: Component? = nil
        for path in paths {
            let components = try ModelInput(path: path).components(family: choice)
            if components.count == 1, let only = components.first, only.kind == .scheduler {
                if let first = schedulerOverride {
                    throw ConvertError.duplicateComponent(kind: only.kind.rawValue, first: first.origin, second: only.origin)
                }
                schedulerOverride = only
                continue
            }
            for component in components {
                if let first = found[component.kind] {
                    throw ConvertError.duplicateComponent(kind: component.kind.rawValue, first: first.origin, second: component.origin)
                }
                found[component.kind] = component
            }
        }
        if let schedulerOverride { found[.scheduler] = schedulerOverride }
        var evidence = FamilyDetection.Evidence(components: found)
        // A sampler given on its own is what the user wants to run: an LCM or DDPM config then makes
        // the family LCM or DMD even over an α store's recorded family (Σ keeps its pipeline).
        if schedulerOverride != nil, evidence.recorded?.family != .sigma { evidence.recorded = nil }
        func need(_ kind: ComponentKind, _ what: String) throws -> Component {
            guard let c = found[kind] else {
                throw RuntimeError.missingComponent("\(what) (\(kind.rawValue)); give another --model that has it")
            }
            return c
        }
        func config<T: Decodable>(_ c: Component, _ type: T.Type) throws -> T {
            guard let text = c.configJSON else { throw RuntimeError.missingComponent("config.json of \(c.origin)") }
            do {
                return try ConfigJSON.decode(T.self, from: Data(text.utf8))
            } catch {
                throw RuntimeError.invalidInput("\(c.origin): bad config: \(error)")
            }
        }
        let transformer = try need(.transformer, "the PixArt transformer")
        let textEncoder = try need(.textEncoder, "the T5 text encoder")
        let vae = try need(.vae, "the VAE")
        let tokenizer = try need(.tokenizer, "the T5 tokenizer")
        guard let spiece = tokenizer.spieceModel else { throw RuntimeError.missingComponent("spiece.model") }
        var scheduler = SchedulerConfig()
        if let s = found[.scheduler] { scheduler = try config(s, SchedulerConfig.self) }
        return PipelineComponents(
            transformerConfig: try config(transformer, PixArtConfig.self), transformer: Weights(ComponentSource(transformer)),
            textEncoderConfig: try config(textEncoder, T5Config.self), textEncoder: Weights(ComponentSource(textEncoder)),
            vaeConfig: try config(vae, VAEConfig.self), vae: Weights(ComponentSource(vae)),
            spieceModel: spiece, schedulerConfig: scheduler, paths: paths,
            family: FamilyDetection.detect(evidence, choice: choice))
    }
}
