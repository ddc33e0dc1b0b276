/// diffusers' aspect-ratio binning for PixArt (`pipeline_pixart_alpha.py` ASPECT_RATIO_*_BIN,
/// `image_processor.py` `PixArtImageProcessor.classify_height_width_bin` and `resize_and_crop_tensor`).
public enum ResolutionBins {
    /// The 1024 table as (aspect-ratio key, height, width) in diffusers' insertion order.
    /// The 512 table is these sizes / 2, the 256 table / 4 (same keys and order).
    static let table1024: [(key: Double, height: Int, width: Int)] = [
        (0.25, 512, 2048), (0.28, 512, 1856), (0.32, 576, 1792), (0.33, 576, 1728), (0.35, 576, 1664),
        (0.4, 640, 1600), (0.42, 640, 1536), (0.48, 704, 1472), (0.5, 704, 1408), (0.52, 704, 1344),
        (0.57, 768, 1344), (0.6, 768, 1280), (0.68, 832, 1216), (0.72, 832, 1152), (0.78, 896, 1152),
        (0.82, 896, 1088), (0.88, 960, 1088), (0.94, 960, 1024), (1.0, 1024, 1024), (1.07, 1024, 960),
        (1.13, 1088, 960), (1.21, 1088, 896), (1.29, 1152, 896), (1.38, 1152, 832), (1.46, 1216, 832),
        (1.67, 1280, 768), (1.75, 1344, 768), (2.0, 1408, 704), (2.09, 1472, 704), (2.4, 1536, 640),
        (2.5, 1600, 640), (3.0, 1728, 576), (4.0, 2048, 512),
    ]

    /// The bin for `height × width`: the key nearest to height/width, the earlier key on ties.
    public static func classify(height: Int, width: Int, sampleSize: Int) throws -> (height: Int, width: Int) {
        let divisor: Int
        switch sampleSize {
        case 128: divisor = 1
        case 64: divisor = 2
        case 32: divisor = 4
        default:
            throw RuntimeError.invalidInput(
                "resolution binning needs a model with sample_size 128, 64 or 32 (this one has \(sampleSize))")
        }
        let ratio = Double(height) / Double(width)
        var best = table1024[0]
        for entry in table1024 where abs(entry.key - ratio) < abs(best.key - ratio) { best = entry }
        return (best.height / divisor, best.width / divisor)
    }

    /// Bilinear resize (align_corners=False, no antialias) so the image covers `to`, then a centre
    /// crop — `resize_and_crop_tensor` on an NCHW float batch.
    public static func resizeAndCrop(
        _ x: [Float], batch: Int, channels: Int, from: (height: Int, width: Int), to: (height: Int, width: Int)
    ) -> [Float] {
        let ratio = max(Double(to.height) / Double(from.height), Double(to.width) / Double(from.width))
        let rh = Int(Double(from.height) * ratio), rw = Int(Double(from.width) * ratio)
        let resized = bilinear(x, planes: batch * channels, from: from, to: (rh, rw))
        let top = (rh - to.height) / 2, left = (rw - to.width) / 2
        var out = [Float](repeating: 0, count: batch * channels * to.height * to.width)
        for p in 0..<(batch * channels) {
            for y in 0..<to.height {
                for xx in 0..<to.width {
                    out[(p * to.height + y) * to.width + xx] = resized[(p * rh + y + top) * rw + xx + left]
                }
            }
        }
        return out
    }

    /// `F.interpolate(mode="bilinear", align_corners=False)` on `planes` planes.
    static func bilinear(
        _ x: [Float], planes: Int, from: (height: Int, width: Int), to: (height: Int, width: Int)
    ) -> [Float] {
        func source(_ i: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Float) {
            let scale = Float(inSize) / Float(outSize)
            let s = max(0, (Float(i) + 0.5) * scale - 0.5)
            let i0 = min(Int(s), inSize - 1)
            let i1 = min(i0 + 1, inSize - 1)
            return (i0, i1, s - Float(i0))
        }
        var out = [Float](repeating: 0, count: planes * to.height * to.width)
        for p in 0..<planes {
            let base = p * from.height * from.width
            for y in 0..<to.height {
                let (y0, y1, fy) = source(y, from.height, to.height)
                for xx in 0..<to.width {
                    let (x0, x1, fx) = source(xx, from.width, to.width)
                    let a = x[base + y0 * from.width + x0], b = x[base + y0 * from.width + x1]
                    let c = x[base + y1 * from.width + x0], d = x[base + y1 * from.width + x1]
                    let top = a * (1 - fx) + b * fx
                    let bottom = c * (1 - fx) + d * fx
                    out[(p * to.height + y) * to.width + xx] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}
