import Foundation

/// Pillow's `Image.resize(size, Image.LANCZOS)` for 8-bit RGB images, the filter diffusers'
/// `VaeImageProcessor.resize` uses by default (`resample="lanczos"`), reproduced bit for bit
/// (Pillow `src/libImaging/Resample.c`, `ImagingResampleInner` with the whole image as the box):
///
/// - kernel sinc(x)·sinc(x/3) on [−3, 3), widened by the scale factor when shrinking;
/// - per output pixel, the source span `[⌊center − support + 0.5⌋, ⌊center + support + 0.5⌋)` clipped to the
///   image (C truncation), weights normalised to sum 1 and rounded to 22-bit fixed point
///   (`(int)(w·2²² ± 0.5)`);
/// - a horizontal pass over the rows the vertical pass reads, stored as 8-bit (rounded with
///   2²¹ added, then clipped to 0…255), then the vertical pass in the same arithmetic;
/// - a pass is skipped when that axis keeps its size; the same size returns the image unchanged.
public enum ImageResize {
    /// rgb[height, width, 3] → rgb[toHeight, toWidth, 3].
    public static func lanczos(
        rgb: [UInt8], width: Int, height: Int, toWidth: Int, toHeight: Int
    ) -> [UInt8] {
        precondition(width > 0 && height > 0 && toWidth > 0 && toHeight > 0)
        precondition(rgb.count == width * height * 3, "resize input size")
        if width == toWidth && height == toHeight { return rgb }
        let vertical = Coefficients(inSize: height, outSize: toHeight)
        var image = rgb
        var first = 0
        if width != toWidth {
            // Only the source rows the vertical pass reads (all of them when it is skipped).
            first = vertical.bounds[0].start
            let last = vertical.bounds[toHeight - 1].start + vertical.bounds[toHeight - 1].count
            let horizontal = Coefficients(inSize: width, outSize: toWidth)
            let rows = last - first
            var out = [UInt8](repeating: 0, count: rows * toWidth * 3)
            for y in 0..<rows {
                let src = (y + first) * width * 3
                for x in 0..<toWidth {
                    let (start, count) = horizontal.bounds[x]
                    let k = x * horizontal.ksize
                    for c in 0..<3 {
                        var sum: Int32 = 1 << (Coefficients.precisionBits - 1)
                        for i in 0..<count {
                            sum &+= Int32(image[src + (start + i) * 3 + c]) &* horizontal.weights[k + i]
                        }
                        out[(y * toWidth + x) * 3 + c] = Coefficients.clip8(sum)
                    }
                }
            }
            image = out
        }
        let w = toWidth
        if height == toHeight { return image }
        var out = [UInt8](repeating: 0, count: toHeight * w * 3)
        for y in 0..<toHeight {
            let (start, count) = vertical.bounds[y]
            let k = y * vertical.ksize
            // Bounds are relative to the first row kept by the horizontal pass.
            let base = start - first
            for x in 0..<w {
                for c in 0..<3 {
                    var sum: Int32 = 1 << (Coefficients.precisionBits - 1)
                    for i in 0..<count {
                        sum &+= Int32(image[((base + i) * w + x) * 3 + c]) &* vertical.weights[k + i]
                    }
                    out[(y * w + x) * 3 + c] = Coefficients.clip8(sum)
                }
            }
        }
        return out
    }

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis (box 0…inSize).
    struct Coefficients {
        static let precisionBits: Int32 = 32 - 8 - 2
        static let support = 3.0

        let ksize: Int
        /// Per output pixel: first source pixel and how many are read.
        let bounds: [(start: Int, count: Int)]
        /// [outSize, ksize] fixed-point weights.
        let weights: [Int32]

        init(inSize: Int, outSize: Int) {
            let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = Coefficients.support * filterScale
            let ksize = Int(support.rounded(.up)) * 2 + 1
            var bounds: [(Int, Int)] = []
            var weights = [Int32](repeating: 0, count: outSize * ksize)
            for xx in 0..<outSize {
                let center = 0 + (Double(xx) + 0.5) * scale
                let ss = 1 / filterScale
                var xmin = Int(center - support + 0.5)  // C (int) truncation toward zero
                if xmin < 0 { xmin = 0 }
                var xmax = Int(center + support + 0.5)
                if xmax > inSize { xmax = inSize }
                xmax -= xmin
                var k = [Double](repeating: 0, count: ksize)
                var ww = 0.0
                for x in 0..<max(xmax, 0) {
                    let w = Coefficients.lanczos((Double(x + xmin) - center + 0.5) * ss)
                    k[x] = w
                    ww += w
                }
                for x in 0..<max(xmax, 0) where ww != 0 { k[x] /= ww }
                for x in 0..<ksize {
                    let v = k[x] * Double(1 << Coefficients.precisionBits)
                    weights[xx * ksize + x] = Int32(k[x] < 0 ? (-0.5 + v).rounded(.towardZero) : (0.5 + v).rounded(.towardZero))
                }
                bounds.append((xmin, max(xmax, 0)))
            }
            self.ksize = ksize
            self.bounds = bounds
            self.weights = weights
        }

        static func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let y = x * Double.pi
            return sin(y) / y
        }

        static func lanczos(_ x: Double) -> Double {
            (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0
        }

        /// `clip8`: the sum shifted right by 22 (arithmetic), clamped to 0…255.
        static func clip8(_ v: Int32) -> UInt8 {
            let s = v >> precisionBits
            return UInt8(clamping: min(max(s, 0), 255))
        }
    }
}
