import Foundation

/// DPM-Solver++ multistep (order 1 or 2, midpoint or heun), as diffusers'
/// `DPMSolverMultistepScheduler` configured for PixArt (D: `scheduling_dpmsolver_multistep.py`:
/// `set_timesteps`, `convert_model_output`, `dpm_solver_first_order_update`,
/// `multistep_dpm_solver_second_order_update`, `step`).
///
/// Scalar coefficients are float32 as diffusers' 0-d float32 tensors; the final σ = 0 step is first
/// order and returns the predicted x0 exactly (e^(−∞) = 0, no NaN).
extension SchedulerKind {
    public static let dpmSolverMultistep = SchedulerKind(
        name: "dpm++2m", aliases: ["dpm", "dpmsolver++", "dpmsolvermultistep"], className: "DPMSolverMultistepScheduler",
        acceptsCustomTimesteps: true, summary: "DPM-Solver++ 2M (PixArt-α's default)"
    ) { config, schedule in
        switch schedule {
        case let .steps(n): return try DPMSolverMultistep(config: config, steps: n)
        case let .custom(t): return try DPMSolverMultistep(config: config, steps: t.count, customTimesteps: t)
        }
    }
}

public struct DPMSolverMultistep: Scheduler {
    public let config: SchedulerConfig
    /// Integer timesteps (int64 in diffusers).
    public let timestepValues: [Int]
    public let timesteps: [Float]
    /// σ per step plus the final σ (N + 1 values).
    public let sigmas: [Float]
    public let initNoiseSigma: Float = 1

    private var modelOutputs: [[Float]?]
    private var lowerOrderNums = 0
    private var nextStep = 0

    /// `customTimesteps`: diffusers' `set_timesteps(timesteps=…)` (the list is used as given, σ
    /// interpolated as for computed timesteps; `steps` is then its count).
    public init(config: SchedulerConfig, steps: Int, customTimesteps: [Int]? = nil) throws {
        guard config.algorithmType == "dpmsolver++" else {
            throw SchedulerError.unsupported(key: "algorithm_type", value: config.algorithmType)
        }
        guard config.solverOrder == 1 || config.solverOrder == 2 else {
            throw SchedulerError.unsupported(key: "solver_order", value: "\(config.solverOrder)")
        }
        guard config.solverType == "midpoint" || config.solverType == "heun" else {
            throw SchedulerError.unsupported(key: "solver_type", value: config.solverType)
        }
        guard ["epsilon", "sample", "v_prediction"].contains(config.predictionType) else {
            throw SchedulerError.unsupported(key: "prediction_type", value: config.predictionType)
        }
        for (key, on) in [("thresholding", config.thresholding), ("use_karras_sigmas", config.useKarrasSigmas),
                          ("use_exponential_sigmas", config.useExponentialSigmas), ("use_beta_sigmas", config.useBetaSigmas),
                          ("use_lu_lambdas", config.useLuLambdas), ("use_flow_sigmas", config.useFlowSigmas)] where on {
            throw SchedulerError.unsupported(key: key, value: "true")
        }
        if let v = config.varianceType { throw SchedulerError.unsupported(key: "variance_type", value: v) }
        let n = config.numTrainTimesteps
        guard steps >= 1, steps <= n else { throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n) }
        let table = try SchedulerNoiseTable(config)

        // last_timestep = T − searchsorted(flip(λ), lambda_min_clipped)
        let lambdas = table.alphasCumprod.map { ac in Foundation.log(ac.squareRoot()) - Foundation.log((1 - ac).squareRoot()) }
        let clipped = lambdas.reversed().filter { Double($0) < config.lambdaMinClipped }.count
        let last = n - clipped

        var ts: [Int]
        if let customTimesteps {
            try schedulerCheckCustom(customTimesteps, trainTimesteps: n)
            for (key, on) in [("use_karras_sigmas", config.useKarrasSigmas), ("use_lu_lambdas", config.useLuLambdas)] where on {
                throw SchedulerError.unsupported(key: key + " with custom timesteps", value: "true")
            }
            ts = customTimesteps
        } else {
        switch config.timestepSpacing ?? "linspace" {
        case "linspace":
            ts = Array(SchedulerNumpy.linspace(0, Double(last - 1), steps + 1).map(SchedulerNumpy.roundToInt).reversed().dropLast())
        case "leading":
            let ratio = last / (steps + 1)
            ts = Array((0...steps).map { $0 * ratio + config.stepsOffset }.reversed().dropLast())
        case "trailing":
            let ratio = Double(n) / Double(steps)
            ts = SchedulerNumpy.arange(Double(last), 0, -ratio).map { SchedulerNumpy.roundToInt($0) - 1 }
        case let other:
            throw SchedulerError.unsupported(key: "timestep_spacing", value: other)
        }
        }
        guard !ts.isEmpty, ts.allSatisfy({ $0 >= 0 && $0 < n }) else {
            throw SchedulerError.invalidSteps(steps: steps, trainTimesteps: n)
        }
        var sig = ts.map { Float(SchedulerNumpy.interp(Double($0), table.sigmas)) }
        switch config.finalSigmasType {
        case "zero": sig.append(0)
        case "sigma_min": sig.append(table.sigmas[0])
        case let other: throw SchedulerError.unsupported(key: "final_sigmas_type", value: other)
        }
        self.config = config
        timestepValues = ts
        timesteps = ts.map { Float($0) }
        sigmas = sig
        modelOutputs = Array(repeating: nil, count: config.solverOrder)
    }

    public func scaleModelInput(_ sample: [Float], stepIndex: Int) throws -> [Float] { sample }

    public mutating func setBeginIndex(_ index: Int) throws {
        try schedulerCheckBegin(index, count: timesteps.count)
        guard nextStep == 0 else { throw SchedulerError.outOfOrder(expected: nextStep, got: index) }
        nextStep = index
    }

    /// α_t · x + σ_t · ε with (α_t, σ_t) of σ = sigmas[stepIndex]
    /// (`scheduling_dpmsolver_multistep.py::add_noise`, `_sigma_to_alpha_sigma_t`, f32).
    public func addNoise(original: [Float], noise: [Float], stepIndex: Int) throws -> [Float] {
        try schedulerCheckBegin(stepIndex, count: timesteps.count)
        try schedulerCheck(noise, count: original.count)
        let (alpha, sigma) = Self.alphaSigma(sigmas[stepIndex])
        return (0..<original.count).map { alpha * original[$0] + sigma * noise[$0] }
    }

    /// (α, σ̃) of σ: α = 1/√(σ²+1), σ̃ = σ·α.
    private static func alphaSigma(_ sigma: Float) -> (Float, Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private static func lambda(_ alpha: Float, _ sigma: Float) -> Float {
        Foundation.log(alpha) - Foundation.log(sigma)
    }

    public mutating func step(modelOutput: [Float], stepIndex: Int, sample: [Float],
                              generators: inout [TorchGenerator]) throws -> SchedulerStepOutput {
        guard stepIndex == nextStep else { throw SchedulerError.outOfOrder(expected: nextStep, got: stepIndex) }
        let count = timesteps.count
        guard stepIndex < count else { throw SchedulerError.stepOutOfRange(step: stepIndex, count: count) }
        try schedulerCheck(modelOutput, count: sample.count)
        let lowerOrderFinal = stepIndex == count - 1
            && (config.eulerAtFinal || (config.lowerOrderFinal && count < 15) || config.finalSigmasType == "zero")

        // convert_model_output: data prediction x0
        let (alphaS, sigmaS) = Self.alphaSigma(sigmas[stepIndex])
        let x0: [Float]
        switch config.predictionType {
        case "epsilon": x0 = zip(sample, modelOutput).map { x, e in (x - sigmaS * e) / alphaS }
        case "sample": x0 = modelOutput
        default: x0 = zip(sample, modelOutput).map { x, v in alphaS * x - sigmaS * v }  // v_prediction
        }
        for i in 0..<(modelOutputs.count - 1) { modelOutputs[i] = modelOutputs[i + 1] }
        modelOutputs[modelOutputs.count - 1] = x0

        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[stepIndex + 1])
        let lambdaT = Self.lambda(alphaT, sigmaT)
        let lambdaS = Self.lambda(alphaS, sigmaS)
        let h = lambdaT - lambdaS
        let a = sigmaT / sigmaS
        let b = alphaT * (Foundation.exp(-h) - 1)
        var out = [Float](repeating: 0, count: sample.count)
        if config.solverOrder == 1 || lowerOrderNums < 1 || lowerOrderFinal {
            for i in out.indices { out[i] = a * sample[i] - b * x0[i] }
        } else {
            // second order: m0 = x0 (newest), m1 = previous x0
            guard let m1 = modelOutputs[modelOutputs.count - 2] else {
                throw SchedulerError.outOfOrder(expected: 0, got: stepIndex)
            }
            let (alphaP, sigmaP) = Self.alphaSigma(sigmas[stepIndex - 1])
            let h0 = lambdaS - Self.lambda(alphaP, sigmaP)
            let r0 = h0 / h
            let invR0 = 1 / r0
            if config.solverType == "midpoint" {
                let halfB = 0.5 * b
                for i in out.indices {
                    let d1 = invR0 * (x0[i] - m1[i])
                    out[i] = (a * sample[i] - b * x0[i]) - halfB * d1
                }
            } else {  // heun
                let c = alphaT * ((Foundation.exp(-h) - 1) / h + 1)
                for i in out.indices {
                    let d1 = invR0 * (x0[i] - m1[i])
                    out[i] = (a * sample[i] - b * x0[i]) + c * d1
                }
            }
        }
        if lowerOrderNums < config.solverOrder { lowerOrderNums += 1 }
        nextStep += 1
        return SchedulerStepOutput(prevSample: out, predOriginalSample: nil)  // diffusers returns (prev_sample,)
    }
}
