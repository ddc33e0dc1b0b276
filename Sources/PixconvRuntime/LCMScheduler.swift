import Foundation

extension SchedulerKind {
    public static let lcm = SchedulerKind(
        name: "lcm", className: "LCMScheduler", acceptsCustomTimesteps: true,
        summary: "latent consistency (PixArt-LCM: 4 steps, guidance 0)"
    ) { config, schedule in
        switch schedule {
        case let .steps(n): return try LCMScheduler(config: config, steps: n)
        case let .custom(t): return try LCMScheduler(config: config, customTimesteps: t)
        }
    }
}

/// Multistep latent-consistency sampling, as diffusers' `LCMScheduler` (D: `scheduling_lcm.py`:
/// `set_timesteps` with strength 1, `get_scalings_for_boundary_condition_discrete`, `step`, `add_noise`).
///
/// Timesteps: the distillation schedule `k·i − 1` (i = 1…original_inference_steps, k = T // that), reversed,
/// sampled at `floor(linspace(0, len, N, endpoint=False))`; or a custom descending list. Each step predicts
/// x0, applies the boundary condition `denoised = c_out·x0 + c_skip·x` (σ_data 0.5, scaled t = t·timestep_scaling,
/// float32 as diffusers' 0-d tensors), and, except at the last step, re-noises to the next timestep with
/// noise drawn from the pipeline's generators (`randn_tensor`, one generator per image).
public struct LCMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let timestepValues: [Int]
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let alphasCumprod: [Float]
    private let finalAlphaCumprod: Float
    private let clipSample: Bool
    private var nextStep = 0

    public init(config: SchedulerConfig, steps: Int) throws {
        try self.init(config: config, schedule: .steps(steps))
    }

    public init(config: SchedulerConfig, customTimesteps: [Int]) throws {
        try self.init(config: config, schedule: .custom(customTimesteps))
    }

    private init(config: SchedulerConfig, schedule: SchedulerSchedule) throws {
        try schedulerCheckAlphaConfig(config)
        guard config.timestepScaling.isFinite else {
            throw SchedulerError.unsupported(key: "timestep_scaling", value: "\(config.timestepScaling)")
        }
        let n = config.numTrainTimesteps
        let table = try SchedulerNoiseTable(config)
        let original = config.originalInferenceSteps
        guard original >= 1, original <= n else {
            throw SchedulerError.unsupported(key: "original_inference_steps", value: "\(original)")
        }
        let k = n / original
        let origin = (1...original).map { $0 * k - 1 }  // strength 1
        var ts: [Int]
        switch schedule {
        case let .custom(list):
            try schedulerCheckCustom(list, trainTimesteps: n)
            ts = list
        case let .steps(steps):
            guard steps >= 1, steps <= n else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
            // diffusers: skipping_step = len // steps ≥ 1 and steps ≤ original_inference_steps
            guard steps <= original else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: original) }
            let reversed = Array(origin.reversed())
            // np.linspace(0, len, num=steps, endpoint=False): i·(len/steps), floored to int64
            let step = Double(reversed.count) / Double(steps)
            ts = (0..<steps).map { reversed[Int((Double($0) * step).rounded(.down))] }
        }
        guard ts.allSatisfy({ $0 >= 0 && $0 < n }) else { throw SchedulerError.badTimesteps("a timestep is outside 0..<\(n)") }
        self.config = config
        timestepValues = ts
        timesteps = ts.map { Float($0) }
        alphasCumprod = table.alphasCumprod
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : table.alphasCumprod[0]
        clipSample = config.clipSample ?? false
    }

    public func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float] { sample }

    public mutating func setBeginIndex(_ index: Int) throws {
        try schedulerCheckBegin(index, count: timesteps.count)
        nextStep = index
    }

    /// √ᾱ_t · x + √(1 − ᾱ_t) · ε (`DDPMScheduler.add_noise`, which LCM copies; f32).
    public func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float] {
        try schedulerCheckBegin(stepIndex, count: timesteps.count)
        return try addNoiseAlphaCumprod(original: original, noise: noise, alpha: alphasCumprod[timestepValues[stepIndex]])
    }

    /// (c_skip, c_out) at timestep t, float32: scaled = t·timestep_scaling (an int64 tensor times a
    /// Python float gives float32), c_skip = 0.25 / (scaled² + 0.25), c_out = scaled / √(scaled² + 0.25).
    func boundaryScalings(_ t: Int) -> (cSkip: Float, cOut: Float) {
        let scaled = Float(t) * Float(config.timestepScaling)
        let denominator = scaled * scaled + 0.25
        return (0.25 / denominator, scaled / denominator.squareRoot())
    }

    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                              generators: inout [TorchGenerator]) throws -> SchedulerStepOutput {
        guard stepIndex == nextStep else { throw SchedulerError.outOfOrder(expected: nextStep, got: stepIndex) }
        guard stepIndex < timesteps.count else { throw SchedulerError.stepOutOfRange(step: stepIndex, count: timesteps.count) }
        try schedulerCheck(modelOutput, count: sample.count)
        let t = timestepValues[stepIndex]
        let prevT = stepIndex + 1 < timestepValues.count ? timestepValues[stepIndex + 1] : t
        let alphaT = alphasCumprod[t]
        let alphaPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod
        let betaT = 1 - alphaT
        let betaPrev = 1 - alphaPrev
        let (cSkip, cOut) = boundaryScalings(t)
        let sqrtAlpha = alphaT.squareRoot(), sqrtBeta = betaT.squareRoot()
        var x0 = alphaPredictedOriginal(config, sample: sample, modelOutput: modelOutput,
                                        sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta)
        if clipSample { schedulerClip(&x0, config) }
        var denoised = [Float](repeating: 0, count: sample.count)
        for i in denoised.indices { denoised[i] = cOut * x0[i] + cSkip * sample[i] }
        var prev = denoised
        if stepIndex != timestepValues.count - 1 {
            let noise = try schedulerNoise(count: sample.count, generators: &generators)
            let a = alphaPrev.squareRoot(), b = betaPrev.squareRoot()
            for i in prev.indices { prev[i] = a * denoised[i] + b * noise[i] }
        }
        nextStep += 1
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: denoised)
    }
}
