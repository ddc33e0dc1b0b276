import CEngine
import Foundation

/// PyTorch `nn.GroupNorm(num_groups, num_channels, eps, affine=True)` on one image x[C, spatial]:
/// each group of C/G channels is normalised with its mean and biased variance over (C/G × spatial)
/// values, `(x − mean) / sqrt(var + eps)`, then scaled and shifted per channel.
///
/// Statistics are accumulated in Double (two passes, `pe_mean_var`: 16 interleaved partial sums,
/// vectorised), so the result hardly depends on the summation order at 1024² pixels. Optionally applies SiLU afterwards, as the VAE blocks always do.
public struct GroupNorm: Sendable {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    /// [C]
    public let weight: [Float]
    /// [C]
    public let bias: [Float]

    public init(weight: [Float], bias: [Float], groups: Int, eps: Float) {
        precondition(groups > 0 && weight.count % groups == 0 && bias.count == weight.count)
        self.groups = groups
        self.channels = weight.count
        self.eps = eps
        self.weight = weight
        self.bias = bias
    }

    /// Reads `weight` [C] and `bias` [C] from `weights` (a scope such as `decoder.conv_norm_out`).
    public init(weights: Weights, groups: Int, channels: Int, eps: Float) throws {
        guard groups > 0, channels % groups == 0 else {
            throw RuntimeError.invalidInput("\(weights.prefix): \(channels) channels do not split into \(groups) groups")
        }
        self.init(weight: try weights.floats("weight", shape: [channels]),
                  bias: try weights.floats("bias", shape: [channels]), groups: groups, eps: eps)
    }

    /// Normalises x[C, spatial] in place; with `silu`, applies x·σ(x) to the result.
    public func callAsFunction(_ x: inout [Float], spatial: Int, silu: Bool = false) {
        let (scale, shift) = channelAffine(x, spatial: spatial)
        x.withUnsafeMutableBufferPointer { p in
            for c in 0..<channels {
                let a = scale[c], b = shift[c]
                let base = c * spatial
                if silu {
                    for i in base..<base + spatial {
                        let v = p[i] * a + b
                        p[i] = v / (1 + expf(-v))
                    }
                } else {
                    for i in base..<base + spatial { p[i] = p[i] * a + b }
                }
            }
        }
    }

    /// The normalisation of x[C, spatial] folded into per-channel factors, y = x·scale[c] + shift[c]
    /// with scale = γ/√(var + eps) and shift = β − mean·scale (PyTorch's CPU kernel uses the same form).
    public func channelAffine(_ x: [Float], spatial: Int) -> (scale: [Float], shift: [Float]) {
        precondition(x.count == channels * spatial, "group norm input size")
        let perGroup = channels / groups
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        x.withUnsafeBufferPointer { p in
            scale.withUnsafeMutableBufferPointer { sp in
            shift.withUnsafeMutableBufferPointer { tp in
            Conv2d.parallelRanges(groups, work: x.count) { range in
            for g in range {
                let start = g * perGroup * spatial
                let end = start + perGroup * spatial
                var mean = 0.0, variance = 0.0
                pe_mean_var(p.baseAddress! + start, Int64(end - start), &mean, &variance)
                let inv = 1 / (variance + Double(eps)).squareRoot()
                for c in g * perGroup..<(g + 1) * perGroup {
                    sp[c] = Float(inv * Double(weight[c]))
                    tp[c] = Float(Double(bias[c]) - mean * inv * Double(weight[c]))
                }
            }
            }
            }
            }
        }
        return (scale, shift)
    }

    /// Plain GroupNorm, one group at a time, straight from the formula (the reference the tests use).
    public static func reference(
        _ x: [Float], spatial: Int, groups: Int, weight: [Float], bias: [Float], eps: Float
    ) -> [Float] {
        let channels = weight.count, perGroup = weight.count / groups
        var y = x
        for g in 0..<groups {
            let values = (g * perGroup * spatial..<(g + 1) * perGroup * spatial).map { Double(x[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            for c in g * perGroup..<min((g + 1) * perGroup, channels) {
                for i in c * spatial..<(c + 1) * spatial {
                    let n = (Double(x[i]) - mean) / (variance + Double(eps)).squareRoot()
                    y[i] = Float(n * Double(weight[c]) + Double(bias[c]))
                }
            }
        }
        return y
    }
}
