import Foundation

/// Euler (no churn), as diffusers' `EulerDiscreteScheduler` (D: `scheduling_euler_discrete.py`:
/// `set_timesteps`, `init_noise_sigma`, `scale_model_input`, `step`).
///
/// From PixArt's config: "linspace" spacing gives float32 timesteps `linspace(0, 999, N)` reversed
/// (not integers: the transformer sees e.g. 946.42), σ interpolated linearly in the float32 training
/// σ table (`np.interp`, float64) plus a final 0, `init_noise_sigma` = σ_max (≈157.4), and the model
/// input divided by √(σ² + 1).
extension SchedulerKind {
    public static let eulerDiscrete = SchedulerKind(
        name: "euler", aliases: ["euler-discrete"], className: "EulerDiscreteScheduler", acceptsCustomTimesteps: true,
        summary: "Euler discrete"
    ) { config, schedule in
        switch schedule {
        case let .steps(n): return try EulerDiscreteScheduler(config: config, steps: n)
        case let .custom(t): return try EulerDiscreteScheduler(config: config, steps: t.count, customTimesteps: t)
        }
    }
}

public struct EulerDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let timesteps: [Float]
    /// σ per step plus the final σ (N + 1 values).
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    private var nextStep = 0

    /// `customTimesteps`: diffusers' `set_timesteps(timesteps=…)` (float32 of the list, σ interpolated;
    /// `steps` is then its count).
    public init(config: SchedulerConfig, steps: Int, customTimesteps: [Int]? = nil) throws {
        guard ["epsilon", "sample", "original_sample", "v_prediction"].contains(config.predictionType) else {
            throw SchedulerError.unsupported(key: "prediction_type", value: config.predictionType)
        }
        guard config.interpolationType == "linear" else {
            throw SchedulerError.unsupported(key: "interpolation_type", value: config.interpolationType)
        }
        for (key, on) in [("use_karras_sigmas", config.useKarrasSigmas), ("use_exponential_sigmas", config.useExponentialSigmas),
                          ("use_beta_sigmas", config.useBetaSigmas),
                          ("timestep_type continuous", config.timestepType == "continuous" && config.predictionType == "v_prediction")]
            where on {
            throw SchedulerError.unsupported(key: key, value: "true")
        }
        let n = config.numTrainTimesteps
        guard steps >= 1, steps <= n else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
        let table = try SchedulerNoiseTable(config)
        let spacing = config.timestepSpacing ?? "linspace"
        var ts: [Float]
        if let customTimesteps {
            try schedulerCheckCustom(customTimesteps, trainTimesteps: n)
            ts = customTimesteps.map { Float($0) }
        } else {
        switch spacing {
        case "linspace":
            ts = SchedulerNumpy.linspace(0, Double(n - 1), steps).map { Float($0) }.reversed()
        case "leading":
            let ratio = n / steps
            ts = (0..<steps).map { Float($0 * ratio) + Float(config.stepsOffset) }.reversed()
        case "trailing":
            ts = SchedulerNumpy.arange(Double(n), 0, -Double(n) / Double(steps))
                .map { Float($0.rounded(.toNearestOrEven)) - 1 }
        case let other:
            throw SchedulerError.unsupported(key: "timestep_spacing", value: other)
        }
        }
        guard ts.allSatisfy({ $0 >= 0 && $0 <= Float(n - 1) }) else {
            throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n)
        }
        var sig = ts.map { Float(SchedulerNumpy.interp(Double($0), table.sigmas)) }
        switch config.finalSigmasType {
        case "zero": sig.append(0)
        case "sigma_min": sig.append(table.sigmas[0])
        case let other: throw SchedulerError.unsupported(key: "final_sigmas_type", value: other)
        }
        self.config = config
        timesteps = ts
        sigmas = sig
        let maxSigma = sig.max() ?? 0
        initNoiseSigma = (spacing == "linspace" || spacing == "trailing") ? maxSigma : (maxSigma * maxSigma + 1).squareRoot()
    }

    public func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float] {
        guard stepIndex >= 0, stepIndex < timesteps.count else {
            throw SchedulerError.stepOutOfRange(step: stepIndex, count: timesteps.count)
        }
        let sigma = sigmas[stepIndex]
        let d = (sigma * sigma + 1).squareRoot()
        return sample.map { $0 / d }
    }

    public mutating func setBeginIndex(_ index: Int) throws {
        try schedulerCheckBegin(index, count: timesteps.count)
        nextStep = index
    }

    /// x + ε · σ with σ = sigmas[stepIndex] (`scheduling_euler_discrete.py::add_noise`, f32).
    public func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float] {
        try schedulerCheckBegin(stepIndex, count: timesteps.count)
        try schedulerCheck(noise, count: original.count)
        let sigma = sigmas[stepIndex]
        return (0..<original.count).map { original[$0] + noise[$0] * sigma }
    }

    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                              generators: inout [TorchGenerator]) throws -> SchedulerStepOutput {
        guard stepIndex == nextStep else { throw SchedulerError.outOfOrder(expected: nextStep, got: stepIndex) }
        guard stepIndex < timesteps.count else { throw SchedulerError.stepOutOfRange(step: stepIndex, count: timesteps.count) }
        try schedulerCheck(modelOutput, count: sample.count)
        let sigma = sigmas[stepIndex]
        let sigmaHat = sigma  // s_churn = 0 ⇒ γ = 0
        let dt = sigmas[stepIndex + 1] - sigmaHat
        var out = [Float](repeating: 0, count: sample.count)
        var predicted = [Float](repeating: 0, count: sample.count)
        for i in out.indices {
            let x = sample[i]
            let m = modelOutput[i]
            let x0: Float
            switch config.predictionType {
            case "epsilon": x0 = x - sigmaHat * m
            case "v_prediction":
                let s2 = sigma * sigma + 1
                x0 = m * (-sigma / s2.squareRoot()) + x / s2
            default: x0 = m  // sample / original_sample
            }
            predicted[i] = x0
            let derivative = (x - x0) / sigmaHat
            out[i] = x + derivative * dt
        }
        nextStep += 1
        return SchedulerStepOutput(prevSample: out, predOriginalSample: predicted)
    }
}
