import Foundation

extension SchedulerKind {
    public static let ddpm = SchedulerKind(
        name: "ddpm", className: "DDPMScheduler", acceptsCustomTimesteps: true,
        summary: "ancestral DDPM (PixArt-α-DMD: --timesteps 400, one step)"
    ) { config, schedule in
        switch schedule {
        case let .steps(n): return try DDPMScheduler(config: config, steps: n)
        case let .custom(t): return try DDPMScheduler(config: config, customTimesteps: t)
        }
    }
}

/// Ancestral DDPM sampling, as diffusers' `DDPMScheduler` (D: `scheduling_ddpm.py`: `set_timesteps`,
/// `previous_timestep`, `_get_variance`, `step`, `add_noise`).
///
/// Class defaults where the config has no key: clip_sample true, timestep_spacing "leading",
/// variance_type "fixed_small" (a config's `null` behaves the same). Each step predicts x0 (clipped when
/// clip_sample), forms the posterior mean `c0·x0 + ct·x`, and for t > 0 adds `σ_t·z` with z drawn from
/// the pipeline's generators. With one inference step the pipeline keeps `predOriginalSample`.
/// Implemented variance types: fixed_small, fixed_small_log, fixed_large ("learned"/"learned_range"
/// need the model's variance channels, which PixArt's pipeline drops before `step`).
public struct DDPMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let timestepValues: [Int]
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let clipSample: Bool
    private let varianceType: String
    private var nextStep = 0

    public init(config: SchedulerConfig, steps: Int) throws {
        try self.init(config: config, schedule: .steps(steps))
    }

    public init(config: SchedulerConfig, customTimesteps: [Int]) throws {
        try self.init(config: config, schedule: .custom(customTimesteps))
    }

    private init(config: SchedulerConfig, schedule: SchedulerSchedule) throws {
        try schedulerCheckAlphaConfig(config)
        let variance = config.varianceType ?? "fixed_small"
        guard ["fixed_small", "fixed_small_log", "fixed_large"].contains(variance) else {
            throw SchedulerError.unsupported(key: "variance_type", value: variance)
        }
        let n = config.numTrainTimesteps
        let table = try SchedulerNoiseTable(config)
        var ts: [Int]
        switch schedule {
        case let .custom(list):
            try schedulerCheckCustom(list, trainTimesteps: n)
            ts = list
        case let .steps(steps):
            guard steps >= 1, steps <= n else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
            ts = try spacedTimesteps(config, steps: steps)
        }
        guard !ts.isEmpty, ts.allSatisfy({ $0 >= 0 && $0 < n }) else {
            throw SchedulerError.badTimesteps("a timestep is outside 0..<\(n)")
        }
        self.config = config
        timestepValues = ts
        timesteps = ts.map { Float($0) }
        alphasCumprod = table.alphasCumprod
        clipSample = config.clipSample ?? true
        varianceType = variance
    }

    public func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float] { sample }

    public mutating func setBeginIndex(_ index: Int) throws {
        try schedulerCheckBegin(index, count: timesteps.count)
        nextStep = index
    }

    /// √ᾱ_t · x + √(1 − ᾱ_t) · ε at t = timesteps[stepIndex] (`add_noise`, f32).
    public func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float] {
        try schedulerCheckBegin(stepIndex, count: timesteps.count)
        return try addNoiseAlphaCumprod(original: original, noise: noise, alpha: alphasCumprod[timestepValues[stepIndex]])
    }

    /// The noise scale at step `stepIndex` (`_get_variance` then the `step` branch): √variance
    /// (fixed_small), exp(½·log variance) (fixed_small_log) or √β_t (fixed_large), float32.
    func noiseScale(stepIndex: Int) -> Float {
        let t = timestepValues[stepIndex]
        let prevT = stepIndex + 1 < timestepValues.count ? timestepValues[stepIndex + 1] : -1
        let alphaT = alphasCumprod[t]
        let alphaPrev: Float = prevT >= 0 ? alphasCumprod[prevT] : 1
        let currentBeta = 1 - alphaT / alphaPrev
        let variance = max((1 - alphaPrev) / (1 - alphaT) * currentBeta, Float(1e-20))
        switch varianceType {
        case "fixed_small_log": return Foundation.exp(0.5 * Foundation.log(variance))
        case "fixed_large": return currentBeta.squareRoot()
        default: return variance.squareRoot()
        }
    }

    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                              generators: inout [TorchGenerator]) throws -> SchedulerStepOutput {
        guard stepIndex == nextStep else { throw SchedulerError.outOfOrder(expected: nextStep, got: stepIndex) }
        guard stepIndex < timesteps.count else { throw SchedulerError.stepOutOfRange(step: stepIndex, count: timesteps.count) }
        try schedulerCheck(modelOutput, count: sample.count)
        let t = timestepValues[stepIndex]
        let prevT = stepIndex + 1 < timestepValues.count ? timestepValues[stepIndex + 1] : -1
        let alphaT = alphasCumprod[t]
        let alphaPrev: Float = prevT >= 0 ? alphasCumprod[prevT] : 1
        let betaT = 1 - alphaT
        let betaPrev = 1 - alphaPrev
        let currentAlpha = alphaT / alphaPrev
        let currentBeta = 1 - currentAlpha
        let sqrtAlpha = alphaT.squareRoot(), sqrtBeta = betaT.squareRoot()
        var x0 = alphaPredictedOriginal(config, sample: sample, modelOutput: modelOutput,
                                        sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta)
        if clipSample { schedulerClip(&x0, config) }
        let originalCoeff = (alphaPrev.squareRoot() * currentBeta) / betaT
        let sampleCoeff = currentAlpha.squareRoot() * betaPrev / betaT
        var prev = [Float](repeating: 0, count: sample.count)
        for i in prev.indices { prev[i] = originalCoeff * x0[i] + sampleCoeff * sample[i] }
        if t > 0 {
            let noise = try schedulerNoise(count: sample.count, generators: &generators)
            let scale = noiseScale(stepIndex: stepIndex)
            for i in prev.indices { prev[i] = prev[i] + scale * noise[i] }
        }
        nextStep += 1
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: x0)
    }
}
