import Foundation

/// Plain single-threaded f32 kernels written from the formulas, independent of the engine's C
/// code: tests compare `Kernels` (and the models' fused passes) against these.
public enum KernelsReference {
    /// y = x·Wᵀ + b with double accumulation.
    public static func linear(_ x: [Float], rows: Int, inFeatures: Int, weight: [Float], outFeatures: Int, bias: [Float]?) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var acc = 0.0
                for i in 0..<inFeatures { acc += Double(x[r * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
                y[r * outFeatures + o] = Float(acc) + (bias?[o] ?? 0)
            }
        }
        return y
    }

    public static func layerNorm(_ p: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int, eps: Float) {
        for r in rows {
            let base = r * dim
            var mean = 0.0
            for i in 0..<dim { mean += Double(p[base + i]) }
            mean /= Double(dim)
            var variance = 0.0
            for i in 0..<dim {
                let d = Double(p[base + i]) - mean
                variance += d * d
            }
            variance /= Double(dim)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            for i in 0..<dim { p[base + i] = Float((Double(p[base + i]) - mean) * inv) }
        }
    }

    public static func softmax(_ p: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int) {
        for r in rows {
            let base = r * dim
            var m = -Double.infinity
            for i in 0..<dim { m = max(m, Double(p[base + i])) }
            var sum = 0.0
            var e = [Double](repeating: 0, count: dim)
            for i in 0..<dim {
                e[i] = Foundation.exp(Double(p[base + i]) - m)
                sum += e[i]
            }
            for i in 0..<dim { p[base + i] = Float(e[i] / sum) }
        }
    }

    public static func geluTanh(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        let c = 0.7978845608028654
        for i in range {
            let v = Double(p[i])
            p[i] = Float(0.5 * v * (1 + Foundation.tanh(c * (v + 0.044715 * v * v * v))))
        }
    }

    public static func silu(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for i in range {
            let v = Double(p[i])
            p[i] = Float(v / (1 + Foundation.exp(-v)))
        }
    }
}
