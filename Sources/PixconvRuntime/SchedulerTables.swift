import Foundation

/// The training noise schedule shared by all schedulers (D: `scheduling_*.py::__init__`), with
/// torch's CPU float32 arithmetic: `betas`, `alphas_cumprod`, and σ = √((1−ᾱ)/ᾱ).
struct SchedulerNoiseTable: Sendable {
    let betas: [Float]
    let alphasCumprod: [Float]
    /// σ for each training timestep, float32 as torch computes it.
    let sigmas: [Float]

    init(_ config: SchedulerConfig) throws {
        let n = config.numTrainTimesteps
        guard n >= 2, n <= 100_000 else { throw SchedulerError.unsupported(key: "num_train_timesteps", value: "\(n)") }
        if config.rescaleBetasZeroSnr { throw SchedulerError.unsupported(key: "rescale_betas_zero_snr", value: "true") }
        // "leading" spacing adds steps_offset to Int timesteps: a huge value overflowed (a trap) and can
        // never give a timestep below num_train_timesteps anyway (FuzzTesting `config` regressions).
        guard config.stepsOffset.magnitude <= 1 << 31 else {
            throw SchedulerError.unsupported(key: "steps_offset", value: "\(config.stepsOffset)")
        }
        var betas: [Float]
        if let trained = config.trainedBetas {
            guard trained.count == n else { throw SchedulerError.unsupported(key: "trained_betas", value: "\(trained.count) values") }
            betas = trained.map { Float($0) }
        } else {
            switch config.betaSchedule {
            case "linear":
                betas = Self.torchLinspace(Float(config.betaStart), Float(config.betaEnd), n)
            case "scaled_linear":
                betas = Self.torchLinspace(Float(config.betaStart.squareRoot()), Float(config.betaEnd.squareRoot()), n)
                    .map { $0 * $0 }
            default:
                throw SchedulerError.unsupported(key: "beta_schedule", value: config.betaSchedule)
            }
        }
        self.betas = betas
        // torch.cumprod on CPU accumulates float32 inputs in double and stores float32.
        var acc: Double = 1
        var cumprod = [Float](repeating: 0, count: n)
        for i in 0..<n {
            acc *= Double(1 - betas[i])
            cumprod[i] = Float(acc)
        }
        alphasCumprod = cumprod
        sigmas = cumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// `torch.linspace(start, end, steps, dtype=float32)` on CPU (PT: `RangeFactoriesKernel.cpp`):
    /// step = (end − start)/(steps − 1) in float32; the first half is `start + step·i`, the second
    /// half `end − step·(steps − 1 − i)`, each a fused multiply-add in the x86 build.
    static func torchLinspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [start] : [] }
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(steps - i - 1))
        }
    }
}

/// numpy helpers used by diffusers' `set_timesteps` (float64 arithmetic).
enum SchedulerNumpy {
    /// `np.linspace(start, stop, num)`: `i·step + start`, the last value set to `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 1 else { return num == 1 ? [start] : [] }
        let step = (stop - start) / Double(num - 1)
        var y = (0..<num).map { Double($0) * step + start }
        y[num - 1] = stop
        return y
    }

    /// `np.arange(start, stop, step)` for a negative or positive float step.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let count = Int(max(0, ((stop - start) / step).rounded(.up)))
        return (0..<count).map { start + Double($0) * step }
    }

    /// `np.interp(x, np.arange(len(fp)), fp)` (float64).
    static func interp(_ x: Double, _ fp: [Float]) -> Double {
        let n = fp.count
        if x.isNaN { return x }
        if x <= 0 { return Double(fp[0]) }
        if x >= Double(n - 1) { return Double(fp[n - 1]) }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return Double(fp[j]) }
        let slope = (Double(fp[j + 1]) - Double(fp[j])) / 1.0
        return slope * (x - Double(j)) + Double(fp[j])
    }

    /// `np.round` (half to even) as an integer.
    static func roundToInt(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }
}
