import Foundation

/// Errors of building or stepping a diffusion scheduler.
public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    case unknownScheduler(String)
    case unsupported(key: String, value: String)
    case invalidSteps(steps: Int, trainTimesteps: Int)
    case outOfOrder(expected: Int, got: Int)
    case stepOutOfRange(step: Int, count: Int)
    case sizeMismatch(expected: Int, actual: Int)
    case needsGenerator(images: Int, values: Int)
    case badTimesteps(String)
    case customTimestepsUnsupported(String)
    case unknownClassName(String)

    public var description: String {
        switch self {
        case let .unknownScheduler(n): return "unknown scheduler \(n) (expected \(SchedulerRegistry.namesList))"
        case let .unsupported(k, v): return "scheduler config: \(k) = \(v) is not supported"
        case let .invalidSteps(s, t): return "scheduler: \(s) inference steps is not in 1...\(t)"
        case let .outOfOrder(e, g): return "scheduler: step \(g) called, expected step \(e)"
        case let .stepOutOfRange(s, c): return "scheduler: step \(s) outside 0..<\(c)"
        case let .sizeMismatch(e, a): return "scheduler: tensor of \(a) values, expected \(e)"
        case let .needsGenerator(g, v):
            return "scheduler: this sampler draws noise and needs one CPU generator per image (got \(g) for \(v) values)"
        case let .badTimesteps(m): return "scheduler: custom timesteps: \(m)"
        case let .customTimestepsUnsupported(n):
            let ok = SchedulerRegistry.all.filter(\.acceptsCustomTimesteps).map(\.name).joined(separator: ", ")
            return "scheduler \(n) does not take custom timesteps (its diffusers set_timesteps has no timesteps argument); these do: \(ok)"
        case let .unknownClassName(c):
            return "the scheduler config names _class_name \(c), which pixconv does not implement; give --scheduler (\(SchedulerRegistry.namesList))"
        }
    }
}

/// What one `step` returns: diffusers' `step(..., return_dict=False)` tuple.
public struct SchedulerStepOutput: Sendable {
    /// `[0]`: the sample at the next timestep.
    public var prevSample: [Float]
    /// `[1]` where the diffusers class returns one: `pred_original_sample` (DDPM, DDIM, Euler) or
    /// `denoised` (LCM). nil for DPM-Solver++ (its tuple has one element).
    public var predOriginalSample: [Float]?

    public init(prevSample: [Float], predOriginalSample: [Float]?) {
        self.prevSample = prevSample
        self.predOriginalSample = predOriginalSample
    }
}

/// A diffusers-style sampler: a fixed list of model timesteps and an update rule.
///
/// Usage, as `PixArtAlphaPipeline.__call__`: `x = noise · initNoiseSigma`; for each step i:
/// `ε = model(scaleModelInput(x, i), timesteps[i])`, `x = step(ε, i, x, generators)`. Steps must be called in order.
public protocol Scheduler: Sendable {
    /// Model timesteps in the order they are used (diffusers `scheduler.timesteps`, as float32).
    var timesteps: [Float] { get }
    /// Factor of the initial Gaussian noise (diffusers `init_noise_sigma`).
    var initNoiseSigma: Float { get }
    /// diffusers `scale_model_input` for step `stepIndex`.
    func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float]
    /// diffusers `step(model_output, timesteps[stepIndex], sample, generator=generators)`.
    ///
    /// `generators` are the pipeline's CPU generators, one per image of the batch (`sample` holds
    /// `generators.count` images), already past the initial latents: a stochastic sampler (LCM, DDPM)
    /// draws its noise as diffusers' `randn_tensor(model_output.shape, generator=list)`, image i from
    /// generator i. Deterministic samplers leave them alone.
    mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                       generators: inout [TorchGenerator]) throws -> SchedulerStepOutput
    /// diffusers `set_begin_index(index)` as img2img calls it: the first `step` is then `stepIndex: index`
    /// (a multistep sampler starts with no history). DDIM has no begin index in diffusers (its steps read
    /// the timestep alone); here it only moves the first expected step.
    mutating func setBeginIndex(_ index: Int) throws
    /// diffusers `add_noise(original_samples, noise, timesteps[stepIndex:stepIndex + 1])` after
    /// `set_begin_index(stepIndex)`: the latents img2img starts from, in f32.
    func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float]
}

extension Scheduler {
    /// `step(...).prevSample` without generators (a stochastic sampler then throws `needsGenerator`).
    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float]) throws -> [Float] {
        var none: [TorchGenerator] = []
        return try step(modelOutput: modelOutput, stepIndex: stepIndex, sample: sample, generators: &none).prevSample
    }
}

/// `randn_tensor(shape, generator=generators)` for a batch of `count` values: with one generator the
/// whole shape from it; with a list, image i's share (`count / generators.count` values) from generator i.
func schedulerNoise(count: Int, generators: inout [TorchGenerator]) throws -> [Float] {
    guard !generators.isEmpty, count % generators.count == 0 else {
        throw SchedulerError.needsGenerator(images: generators.count, values: count)
    }
    let per = count / generators.count
    var out = [Float]()
    out.reserveCapacity(count)
    for i in generators.indices { out += generators[i].randn(count: per) }
    return out
}

/// Checks shared by the `setBeginIndex` implementations.
func schedulerCheckBegin(_ index: Int, count: Int) throws {
    guard index >= 0, index < count else { throw SchedulerError.stepOutOfRange(step: index, count: count) }
}

/// Custom timesteps (diffusers' `timesteps=` of `set_timesteps`, via the pipeline's `retrieve_timesteps`):
/// checked as DDPM and LCM check them, strictly descending, each in `0..<trainTimesteps`.
func schedulerCheckCustom(_ timesteps: [Int], trainTimesteps n: Int) throws {
    guard !timesteps.isEmpty else { throw SchedulerError.badTimesteps("the list is empty") }
    for i in 1..<max(1, timesteps.count) where timesteps[i] >= timesteps[i - 1] {
        throw SchedulerError.badTimesteps("custom timesteps must be in descending order")
    }
    guard timesteps[0] < n else { throw SchedulerError.badTimesteps("timesteps must start before num_train_timesteps \(n)") }
    guard let last = timesteps.last, last >= 0 else { throw SchedulerError.badTimesteps("timesteps must be ≥ 0") }
}

/// The scheduler `name` (a CLI name or alias of `SchedulerRegistry`), built like diffusers'
/// `XScheduler.from_config(config)` followed by `set_timesteps(steps)`, or `set_timesteps(timesteps=…)`
/// when `timesteps` is given (then `steps` is ignored; only schedulers whose diffusers
/// `set_timesteps` takes `timesteps` accept it).
public func makeScheduler(name: String, config: SchedulerConfig, steps: Int, timesteps: [Int]? = nil) throws -> any Scheduler {
    guard let kind = SchedulerRegistry.kind(named: name) else { throw SchedulerError.unknownScheduler(name) }
    if let timesteps {
        guard kind.acceptsCustomTimesteps else { throw SchedulerError.customTimestepsUnsupported(kind.name) }
        return try kind.make(config, .custom(timesteps))
    }
    return try kind.make(config, .steps(steps))
}

/// The config checks of the ᾱ-parameterised samplers (DDIM, DDPM, LCM): a prediction type they
/// implement, no dynamic thresholding.
func schedulerCheckAlphaConfig(_ config: SchedulerConfig) throws {
    guard ["epsilon", "sample", "v_prediction"].contains(config.predictionType) else {
        throw SchedulerError.unsupported(key: "prediction_type", value: config.predictionType)
    }
    if config.thresholding { throw SchedulerError.unsupported(key: "thresholding", value: "true") }
}

/// `set_timesteps(steps)` of DDIM and DDPM by `timestep_spacing` (their class default "leading"):
/// linspace, leading (+ steps_offset) or trailing, descending. Range checks are the caller's.
func spacedTimesteps(_ config: SchedulerConfig, steps: Int) throws -> [Int] {
    let n = config.numTrainTimesteps
    switch config.timestepSpacing ?? "leading" {
    case "linspace":
        return SchedulerNumpy.linspace(0, Double(n - 1), steps).map(SchedulerNumpy.roundToInt).reversed()
    case "leading":
        let ratio = n / steps
        return (0..<steps).map { $0 * ratio + config.stepsOffset }.reversed()
    case "trailing":
        return SchedulerNumpy.arange(Double(n), 0, -Double(n) / Double(steps)).map { SchedulerNumpy.roundToInt($0) - 1 }
    case let other:
        throw SchedulerError.unsupported(key: "timestep_spacing", value: other)
    }
}

/// The predicted x0 of the ᾱ-parameterised samplers (DDPM, LCM; DDIM also needs ε and keeps its
/// own): epsilon (x − √β·ε)/√ᾱ, sample as is, v_prediction √ᾱ·x − √β·v, float32.
func alphaPredictedOriginal(_ config: SchedulerConfig, sample: [Float], modelOutput: [Float],
                            sqrtAlpha: Float, sqrtBeta: Float) -> [Float] {
    switch config.predictionType {
    case "epsilon": return zip(sample, modelOutput).map { x, e in (x - sqrtBeta * e) / sqrtAlpha }
    case "sample": return modelOutput
    default: return zip(sample, modelOutput).map { x, v in sqrtAlpha * x - sqrtBeta * v }  // v_prediction
    }
}

/// `clip_sample`: x0 clamped to ±clip_sample_range.
func schedulerClip(_ x0: inout [Float], _ config: SchedulerConfig) {
    let r = Float(config.clipSampleRange)
    for i in x0.indices { x0[i] = min(max(x0[i], -r), r) }
}

/// `add_noise` of the ᾱ-parameterised samplers (DDIM, DDPM, LCM): √ᾱ · x + √(1 − ᾱ) · ε, float32.
func addNoiseAlphaCumprod(original: [Float], noise: [Float], alpha: Float) throws -> [Float] {
    try schedulerCheck(noise, count: original.count)
    let a = alpha.squareRoot(), b = (1 - alpha).squareRoot()
    return (0..<original.count).map { a * original[$0] + b * noise[$0] }
}

/// Checks shared by the `step` implementations.
func schedulerCheck(_ values: [Float], count: Int) throws {
    guard values.count == count else { throw SchedulerError.sizeMismatch(expected: count, actual: values.count) }
}
