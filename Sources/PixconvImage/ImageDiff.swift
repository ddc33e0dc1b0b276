/// Difference images for `pixconv verify --save-diff`.
public enum ImageDiff {
    /// Per-pixel largest channel difference max_c |a − b| of interleaved images [height, width, channels].
    public static func pixelDifferences(_ a: [UInt8], _ b: [UInt8], width: Int, height: Int, channels: Int = 3)
        throws(ImageError) -> [UInt8]
    {
        guard a.count == b.count else { throw .sizeMismatch(first: a.count, second: b.count) }
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (count, o2) = pixels.multipliedReportingOverflow(by: channels)
        guard width > 0, height > 0, channels > 0, !o1, !o2, count == a.count else {
            throw .badPixelCount(width: width, height: height, expected: o1 || o2 ? -1 : count, actual: a.count)
        }
        var out = [UInt8](repeating: 0, count: pixels)
        for p in 0..<pixels {
            var worst: UInt8 = 0
            for c in 0..<channels {
                let x = a[p * channels + c], y = b[p * channels + c]
                worst = max(worst, x > y ? x - y : y - x)
            }
            out[p] = worst
        }
        return out
    }

    /// An RGB heat map [height, width, 3] of `pixelDifferences`: 0 is black and the colour runs through
    /// red and yellow to white at `scale` (default: the largest difference, so any difference shows).
    public static func heatmap(
        _ a: [UInt8], _ b: [UInt8], width: Int, height: Int, channels: Int = 3, scale: Int? = nil
    ) throws(ImageError) -> [UInt8] {
        let diff = try pixelDifferences(a, b, width: width, height: height, channels: channels)
        let top = Float(max(1, scale ?? Int(diff.max() ?? 0)))
        var rgb = [UInt8](repeating: 0, count: diff.count * 3)
        for (p, d) in diff.enumerated() {
            let t = min(Float(d) / top, 1) * 3  // 0…3: black → red → yellow → white
            rgb[3 * p] = channelByte(t)
            rgb[3 * p + 1] = channelByte(t - 1)
            rgb[3 * p + 2] = channelByte(t - 2)
        }
        return rgb
    }

    private static func channelByte(_ v: Float) -> UInt8 {
        UInt8((min(max(v, 0), 1) * 255).rounded())
    }
}
