import Foundation

/// Full-reference image metrics, matching scikit-image 0.26 (`skimage/metrics/simple_metrics.py`,
/// `_structural_similarity.py`). Images are interleaved HWC arrays; all sums are in Double.
public enum ImageMetrics {
    /// `peak_signal_noise_ratio(a, b, data_range=255)`: 10·log10(255² / MSE); +∞ for identical images.
    public static func psnr(_ a: [UInt8], _ b: [UInt8]) throws(ImageError) -> Double {
        guard a.count == b.count, !a.isEmpty else { throw .sizeMismatch(first: a.count, second: b.count) }
        var sum = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        return psnr(mse: sum / Double(a.count), range: 255)
    }

    /// `peak_signal_noise_ratio(a, b, data_range=1)` for float images in [0, 1]; +∞ for identical images.
    public static func psnr(_ a: [Float], _ b: [Float]) throws(ImageError) -> Double {
        guard a.count == b.count, !a.isEmpty else { throw .sizeMismatch(first: a.count, second: b.count) }
        var sum = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        return psnr(mse: sum / Double(a.count), range: 1)
    }

    private static func psnr(mse: Double, range: Double) -> Double {
        mse == 0 ? .infinity : 10 * log10(range * range / mse)
    }

    /// Largest |a − b| over all values.
    public static func maxAbsDifference(_ a: [UInt8], _ b: [UInt8]) throws(ImageError) -> Int {
        guard a.count == b.count else { throw .sizeMismatch(first: a.count, second: b.count) }
        var worst = 0
        for i in a.indices { worst = max(worst, abs(Int(a[i]) - Int(b[i]))) }
        return worst
    }

    /// Gaussian window of `structural_similarity(gaussian_weights=True, sigma=1.5)`: truncate 3.5 → radius 5, 11 taps.
    public static let ssimSigma = 1.5
    public static let ssimRadius = 5
    public static var ssimWindow: Int { 2 * ssimRadius + 1 }

    /// Mean SSIM (Wang et al. 2004) over the channels of interleaved images [height, width, channels], as
    /// `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// data_range=255, channel_axis=2)`: K1 0.01, K2 0.03, Gaussian local statistics (scipy
    /// `gaussian_filter`, mode "reflect"), the SSIM map averaged without its 5-pixel border.
    /// Both sides must be at least 11×11.
    public static func ssim(_ a: [UInt8], _ b: [UInt8], width: Int, height: Int, channels: Int = 3) throws(ImageError)
        -> Double
    {
        let channelValues = try ssimPerChannel(a, b, width: width, height: height, channels: channels)
        return channelValues.reduce(0, +) / Double(channels)
    }

    /// SSIM of each channel separately (the values `ssim` averages).
    public static func ssimPerChannel(
        _ a: [UInt8], _ b: [UInt8], width: Int, height: Int, channels: Int = 3
    ) throws(ImageError) -> [Double] {
        guard a.count == b.count else { throw .sizeMismatch(first: a.count, second: b.count) }
        guard width >= ssimWindow, height >= ssimWindow, channels > 0 else {
            throw .tooSmall(width: width, height: height, minimum: ssimWindow)
        }
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (count, o2) = pixels.multipliedReportingOverflow(by: channels)
        guard !o1, !o2, a.count == count else {
            throw .badPixelCount(width: width, height: height, expected: o1 || o2 ? -1 : count, actual: a.count)
        }
        let kernel = gaussianKernel(sigma: ssimSigma, radius: ssimRadius)
        let c1 = (0.01 * 255.0) * (0.01 * 255.0)
        let c2 = (0.03 * 255.0) * (0.03 * 255.0)
        var result: [Double] = []
        for c in 0..<channels {
            var x = [Double](repeating: 0, count: pixels)
            var y = [Double](repeating: 0, count: pixels)
            for i in 0..<pixels {
                x[i] = Double(a[i * channels + c])
                y[i] = Double(b[i * channels + c])
            }
            let ux = filter(x, width: width, height: height, kernel: kernel)
            let uy = filter(y, width: width, height: height, kernel: kernel)
            let uxx = filter(zip(x, x).map(*), width: width, height: height, kernel: kernel)
            let uyy = filter(zip(y, y).map(*), width: width, height: height, kernel: kernel)
            let uxy = filter(zip(x, y).map(*), width: width, height: height, kernel: kernel)
            var sum = 0.0
            let r = ssimRadius
            for row in r..<height - r {
                for col in r..<width - r {
                    let i = row * width + col
                    let vx = uxx[i] - ux[i] * ux[i]
                    let vy = uyy[i] - uy[i] * uy[i]
                    let vxy = uxy[i] - ux[i] * uy[i]
                    let a1 = 2 * ux[i] * uy[i] + c1, a2 = 2 * vxy + c2
                    let b1 = ux[i] * ux[i] + uy[i] * uy[i] + c1, b2 = vx + vy + c2
                    sum += (a1 * a2) / (b1 * b2)
                }
            }
            result.append(sum / Double((height - 2 * r) * (width - 2 * r)))
        }
        return result
    }

    /// scipy `_gaussian_kernel1d`: exp(−x²/(2σ²)) for x in −radius…radius, normalised to sum 1.
    static func gaussianKernel(sigma: Double, radius: Int) -> [Double] {
        let raw = (-radius...radius).map { exp(-0.5 / (sigma * sigma) * Double($0 * $0)) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }

    /// Separable correlation along rows (axis 0) then columns (axis 1), scipy mode "reflect"
    /// (d c b a | a b c d | d c b a).
    static func filter(_ x: [Double], width: Int, height: Int, kernel: [Double]) -> [Double] {
        let r = kernel.count / 2
        // Source index of each tap position, −r ..< n + r, reflected once here instead of per tap.
        let rowIndex = (-r..<height + r).map { reflect($0, height) * width }
        let colIndex = (-r..<width + r).map { reflect($0, width) }
        var tmp = [Double](repeating: 0, count: x.count)
        for row in 0..<height {
            for col in 0..<width {
                var acc = 0.0
                for t in 0..<kernel.count { acc += kernel[t] * x[rowIndex[row + t] + col] }
                tmp[row * width + col] = acc
            }
        }
        var out = [Double](repeating: 0, count: x.count)
        for row in 0..<height {
            let base = row * width
            for col in 0..<width {
                var acc = 0.0
                for t in 0..<kernel.count { acc += kernel[t] * tmp[base + colIndex[col + t]] }
                out[base + col] = acc
            }
        }
        return out
    }

    /// Half-sample symmetric index into 0..<n, repeated for offsets larger than n.
    static func reflect(_ i: Int, _ n: Int) -> Int {
        var i = i
        while i < 0 || i >= n {
            if i < 0 { i = -i - 1 }
            if i >= n { i = 2 * n - i - 1 }
        }
        return i
    }
}
