import Foundation

/// Errors of building or stepping a diffusion scheduler.
public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    case unknownScheduler(String)
    case unsupported(key: String, value: String)
    case invalidSteps(steps: Int, trainTimesteps: Int)
    case outOfOrder(expected: Int, got: Int)
    case stepOutOfRange(step: Int, count: Int)
    case sizeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .unknownScheduler(n): return "unknown scheduler \(n) (expected dpm++2m, ddim or euler)"
        case let .unsupported(k, v): return "scheduler config: \(k) = \(v) is not supported"
        case let .invalidSteps(s, t): return "scheduler: \(s) inference steps is not in 1...\(t)"
        case let .outOfOrder(e, g): return "scheduler: step \(g) called, expected step \(e)"
        case let .stepOutOfRange(s, c): return "scheduler: step \(s) outside 0..<\(c)"
        case let .sizeMismatch(e, a): return "scheduler: tensor of \(a) values, expected \(e)"
        }
    }
}

/// A diffusers-style sampler: a fixed list of model timesteps and an update rule.
///
/// Usage, as `PixArtAlphaPipeline.__call__`: `x = noise · initNoiseSigma`; for each step i:
/// `ε = model(scaleModelInput(x, i), timesteps[i])`, `x = step(ε, i, x)`. Steps must be called in order.
public protocol Scheduler: Sendable {
    /// Model timesteps in the order they are used (diffusers `scheduler.timesteps`, as float32).
    var timesteps: [Float] { get }
    /// Factor of the initial Gaussian noise (diffusers `init_noise_sigma`).
    var initNoiseSigma: Float { get }
    /// diffusers `scale_model_input` for step `stepIndex`.
    func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float]
    /// diffusers `step(model_output, timesteps[stepIndex], sample).prev_sample`.
    mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float]) throws -> [Float]
    /// diffusers `set_begin_index(index)` as img2img calls it: the first `step` is then `stepIndex: index`
    /// (a multistep sampler starts with no history). DDIM has no begin index in diffusers (its steps read
    /// the timestep alone); here it only moves the first expected step.
    mutating func setBeginIndex(_ index: Int) throws
    /// diffusers `add_noise(original_samples, noise, timesteps[stepIndex:stepIndex + 1])` after
    /// `set_begin_index(stepIndex)`: the latents img2img starts from, in f32.
    func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float]
}

/// Checks shared by the `setBeginIndex` implementations.
func schedulerCheckBegin(_ index: Int, count: Int) throws {
    guard index >= 0, index < count else { throw SchedulerError.stepOutOfRange(step: index, count: count) }
}

/// The scheduler `name` ("dpm++2m", "ddim" or "euler"), built like diffusers'
/// `XScheduler.from_config(config)` followed by `set_timesteps(steps)`.
public func makeScheduler(name: String, config: SchedulerConfig, steps: Int) throws -> any Scheduler {
    switch name.lowercased() {
    case "dpm++2m", "dpm", "dpmsolver++", "dpmsolvermultistep": return try DPMSolverMultistep(config: config, steps: steps)
    case "ddim": return try DDIMScheduler(config: config, steps: steps)
    case "euler", "euler-discrete": return try EulerDiscreteScheduler(config: config, steps: steps)
    default: throw SchedulerError.unknownScheduler(name)
    }
}

/// Checks shared by the `step` implementations.
func schedulerCheck(_ values: [Float], count: Int) throws {
    guard values.count == count else { throw SchedulerError.sizeMismatch(expected: count, actual: values.count) }
}
