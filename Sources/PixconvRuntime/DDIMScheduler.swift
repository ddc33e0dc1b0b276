import Foundation

/// Deterministic DDIM (eta 0), as diffusers' `DDIMScheduler` (D: `scheduling_ddim.py::set_timesteps`, `step`).
///
/// Built from PixArt's DPM-Solver config (`DDIMScheduler.from_config`), the keys DDIM shares are
/// taken from the file and the others keep DDIM's defaults: timestep_spacing "linspace" (from the
/// file), clip_sample true, set_alpha_to_one true, steps_offset 0. Note that with "linspace" spacing
/// diffusers still steps to `t − T // N` (not to the next listed timestep); this is reproduced.
extension SchedulerKind {
    public static let ddim = SchedulerKind(
        name: "ddim", className: "DDIMScheduler", acceptsCustomTimesteps: false, summary: "DDIM, eta 0"
    ) { config, schedule in
        guard case let .steps(n) = schedule else { throw SchedulerError.customTimestepsUnsupported("ddim") }
        return try DDIMScheduler(config: config, steps: n)
    }
}

public struct DDIMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let timestepValues: [Int]
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let finalAlphaCumprod: Float
    private let clipSample: Bool
    private let stepRatio: Int
    private var nextStep = 0

    public init(config: SchedulerConfig, steps: Int) throws {
        try schedulerCheckAlphaConfig(config)
        let n = config.numTrainTimesteps
        guard steps >= 1, steps <= n else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
        let table = try SchedulerNoiseTable(config)
        let ts = try spacedTimesteps(config, steps: steps)
        guard ts.allSatisfy({ $0 >= 0 && $0 < n }) else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
        self.config = config
        timestepValues = ts
        timesteps = ts.map { Float($0) }
        alphasCumprod = table.alphasCumprod
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : table.alphasCumprod[0]
        clipSample = config.clipSample ?? true
        stepRatio = n / steps
    }

    public func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float] { sample }

    public mutating func setBeginIndex(_ index: Int) throws {
        try schedulerCheckBegin(index, count: timesteps.count)
        nextStep = index
    }

    /// √ᾱ_t · x + √(1 − ᾱ_t) · ε at t = timesteps[stepIndex] (`scheduling_ddim.py::add_noise`, f32).
    public func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float] {
        try schedulerCheckBegin(stepIndex, count: timesteps.count)
        return try addNoiseAlphaCumprod(original: original, noise: noise, alpha: alphasCumprod[timestepValues[stepIndex]])
    }

    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                              generators: inout [TorchGenerator]) throws -> SchedulerStepOutput {
        guard stepIndex == nextStep else { throw SchedulerError.outOfOrder(expected: nextStep, got: stepIndex) }
        guard stepIndex < timesteps.count else { throw SchedulerError.stepOutOfRange(step: stepIndex, count: timesteps.count) }
        try schedulerCheck(modelOutput, count: sample.count)
        let t = timestepValues[stepIndex]
        let prevT = t - stepRatio
        let alphaT = alphasCumprod[t]
        let alphaPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod
        let betaT = 1 - alphaT
        let sqrtAlpha = alphaT.squareRoot()
        let sqrtBeta = betaT.squareRoot()
        var x0: [Float]
        var eps: [Float]
        switch config.predictionType {
        case "epsilon":
            x0 = zip(sample, modelOutput).map { x, e in (x - sqrtBeta * e) / sqrtAlpha }
            eps = modelOutput
        case "sample":
            x0 = modelOutput
            eps = zip(sample, modelOutput).map { x, p in (x - sqrtAlpha * p) / sqrtBeta }
        default:  // v_prediction
            x0 = zip(sample, modelOutput).map { x, v in sqrtAlpha * x - sqrtBeta * v }
            eps = zip(sample, modelOutput).map { x, v in sqrtAlpha * v + sqrtBeta * x }
        }
        if clipSample { schedulerClip(&x0, config) }
        // eta = 0: σ_t = 0, direction = √(1 − ᾱ_prev)·ε
        let dirScale = (1 - alphaPrev - 0).squareRoot()
        let prevScale = alphaPrev.squareRoot()
        var out = [Float](repeating: 0, count: sample.count)
        for i in out.indices { out[i] = prevScale * x0[i] + dirScale * eps[i] }
        nextStep += 1
        return SchedulerStepOutput(prevSample: out, predOriginalSample: x0)
    }
}
