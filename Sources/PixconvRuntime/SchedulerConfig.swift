import Foundation

/// A diffusers `scheduler_config.json` (PixArt ships a `DPMSolverMultistepScheduler` config).
///
/// Every key is optional in the file; an absent key takes the diffusers constructor default.
/// Keys whose default differs between scheduler classes (`timestep_spacing`, DDIM's
/// `clip_sample` / `set_alpha_to_one`) stay optional here and are resolved by each scheduler,
/// exactly as `DDIMScheduler.from_config(dpm_config)` would resolve them.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    public var numTrainTimesteps: Int = 1000
    public var betaStart: Double = 0.0001
    public var betaEnd: Double = 0.02
    /// "linear" or "scaled_linear".
    public var betaSchedule: String = "linear"
    public var trainedBetas: [Double]? = nil
    /// "epsilon", "sample" or "v_prediction".
    public var predictionType: String = "epsilon"
    public var solverOrder: Int = 2
    /// Only "dpmsolver++" is implemented.
    public var algorithmType: String = "dpmsolver++"
    /// "midpoint" or "heun".
    public var solverType: String = "midpoint"
    public var lowerOrderFinal: Bool = true
    public var eulerAtFinal: Bool = false
    /// nil: the scheduler class default ("linspace" for DPM-Solver++ and Euler, "leading" for DDIM).
    public var timestepSpacing: String? = nil
    public var stepsOffset: Int = 0
    /// "zero" or "sigma_min".
    public var finalSigmasType: String = "zero"
    public var lambdaMinClipped: Double = -.infinity
    public var thresholding: Bool = false
    public var useKarrasSigmas: Bool = false
    public var useExponentialSigmas: Bool = false
    public var useBetaSigmas: Bool = false
    public var useLuLambdas: Bool = false
    public var useFlowSigmas: Bool = false
    public var rescaleBetasZeroSnr: Bool = false
    public var varianceType: String? = nil
    /// DDIM: clip the predicted x0 (DDIM default true; absent from PixArt's DPM config).
    public var clipSample: Bool? = nil
    public var clipSampleRange: Double = 1.0
    /// DDIM: ᾱ before the first training step is 1 (DDIM default true).
    public var setAlphaToOne: Bool? = nil
    /// Euler: "linear" or "log_linear" (only "linear" is implemented).
    public var interpolationType: String = "linear"
    /// Euler: "discrete" or "continuous" (only "discrete" is implemented).
    public var timestepType: String = "discrete"
    /// diffusers `_class_name`: the scheduler class the file is for (the model's default scheduler,
    /// `SchedulerRegistry.defaultKind`); nil when the file has none.
    public var className: String? = nil
    /// LCM: the distillation schedule's length (LCMScheduler default 50).
    public var originalInferenceSteps: Int = 50
    /// LCM: the timestep scaling of the boundary-condition scalings (LCMScheduler default 10).
    public var timestepScaling: Double = 10

    public init() {}

    enum CodingKeys: String, CodingKey {
        case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", trainedBetas = "trained_betas", predictionType = "prediction_type"
        case solverOrder = "solver_order", algorithmType = "algorithm_type", solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final"
        case timestepSpacing = "timestep_spacing", stepsOffset = "steps_offset"
        case finalSigmasType = "final_sigmas_type", lambdaMinClipped = "lambda_min_clipped"
        case thresholding, useKarrasSigmas = "use_karras_sigmas", useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas", useLuLambdas = "use_lu_lambdas", useFlowSigmas = "use_flow_sigmas"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr", varianceType = "variance_type"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case interpolationType = "interpolation_type", timestepType = "timestep_type"
        case className = "_class_name", originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SchedulerConfig()
        func get<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        numTrainTimesteps = try get(.numTrainTimesteps, d.numTrainTimesteps)
        betaStart = try get(.betaStart, d.betaStart)
        betaEnd = try get(.betaEnd, d.betaEnd)
        betaSchedule = try get(.betaSchedule, d.betaSchedule)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try get(.predictionType, d.predictionType)
        solverOrder = try get(.solverOrder, d.solverOrder)
        algorithmType = try get(.algorithmType, d.algorithmType)
        solverType = try get(.solverType, d.solverType)
        lowerOrderFinal = try get(.lowerOrderFinal, d.lowerOrderFinal)
        eulerAtFinal = try get(.eulerAtFinal, d.eulerAtFinal)
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing)
        stepsOffset = try get(.stepsOffset, d.stepsOffset)
        finalSigmasType = try get(.finalSigmasType, d.finalSigmasType)
        lambdaMinClipped = try get(.lambdaMinClipped, d.lambdaMinClipped)
        thresholding = try get(.thresholding, d.thresholding)
        useKarrasSigmas = try get(.useKarrasSigmas, d.useKarrasSigmas)
        useExponentialSigmas = try get(.useExponentialSigmas, d.useExponentialSigmas)
        useBetaSigmas = try get(.useBetaSigmas, d.useBetaSigmas)
        useLuLambdas = try get(.useLuLambdas, d.useLuLambdas)
        useFlowSigmas = try get(.useFlowSigmas, d.useFlowSigmas)
        rescaleBetasZeroSnr = try get(.rescaleBetasZeroSnr, d.rescaleBetasZeroSnr)
        varianceType = try c.decodeIfPresent(String.self, forKey: .varianceType)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        clipSampleRange = try get(.clipSampleRange, d.clipSampleRange)
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne)
        interpolationType = try get(.interpolationType, d.interpolationType)
        timestepType = try get(.timestepType, d.timestepType)
        className = try c.decodeIfPresent(String.self, forKey: .className)
        originalInferenceSteps = try get(.originalInferenceSteps, d.originalInferenceSteps)
        timestepScaling = try get(.timestepScaling, d.timestepScaling)
    }

    /// Decodes a scheduler_config.json. Python's json writes `-Infinity` / `NaN` bare (PixArt's
    /// `lambda_min_clipped` is `-Infinity`); `ConfigJSON` accepts them and is strict otherwise.
    public static func decode(json data: Data) throws -> SchedulerConfig {
        try ConfigJSON.decode(SchedulerConfig.self, from: data)
    }

    /// Reads `scheduler_config.json` from a file.
    public static func load(path: String) throws -> SchedulerConfig {
        try decode(json: try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
