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

    /// PixArt-Σ's 2048 table (`pipeline_pixart_sigma.py` ASPECT_RATIO_2048_BIN): not the 1024 table
    /// doubled, it has more keys (0.26, 0.27, 2.89, 3.11, 3.62, 3.75, 3.88).
    static let table2048: [(key: Double, height: Int, width: Int)] = [
        (0.25, 1024, 4096), (0.26, 1024, 3968), (0.27, 1024, 3840), (0.28, 1024, 3712), (0.32, 1152, 3584),
        (0.33, 1152, 3456), (0.35, 1152, 3328), (0.4, 1280, 3200), (0.42, 1280, 3072), (0.48, 1408, 2944),
        (0.5, 1408, 2816), (0.52, 1408, 2688), (0.57, 1536, 2688), (0.6, 1536, 2560), (0.68, 1664, 2432),
        (0.72, 1664, 2304), (0.78, 1792, 2304), (0.82, 1792, 2176), (0.88, 1920, 2176), (0.94, 1920, 2048),
        (1.0, 2048, 2048), (1.07, 2048, 1920), (1.13, 2176, 1920), (1.21, 2176, 1792), (1.29, 2304, 1792),
        (1.38, 2304, 1664), (1.46, 2432, 1664), (1.67, 2560, 1536), (1.75, 2688, 1536), (2.0, 2816, 1408),
        (2.09, 2944, 1408), (2.4, 3072, 1280), (2.5, 3200, 1280), (2.89, 3328, 1152), (3.0, 3456, 1152),
        (3.11, 3584, 1152), (3.62, 3712, 1024), (3.75, 3840, 1024), (3.88, 3968, 1024), (4.0, 4096, 1024),
    ]

    /// The table the pipeline picks by the transformer's sample size (128 → 1024, 64 → 512,
    /// 32 → 256, and for PixArt-Σ 256 → 2048), as (key, height, width).
    public static func table(sampleSize: Int) throws -> [(key: Double, height: Int, width: Int)] {
        switch sampleSize {
        case 256: return table2048
        case 128: return table1024
        case 64: return table1024.map { ($0.key, $0.height / 2, $0.width / 2) }
        case 32: return table1024.map { ($0.key, $0.height / 4, $0.width / 4) }
        default:
            throw RuntimeError.invalidInput(
                "resolution binning needs a model with sample_size 256, 128, 64 or 32 (this one has \(sampleSize))")
        }
    }

    /// The bin for `height × width`: the key nearest to height/width, the earlier key on ties
    /// (`classify_height_width_bin`).
    public static func classify(height: Int, width: Int, sampleSize: Int) throws -> (height: Int, width: Int) {
        let table = try table(sampleSize: sampleSize)
        let ratio = Double(height) / Double(width)
        var best = table[0]
        for entry in table where abs(entry.key - ratio) < abs(best.key - ratio) { best = entry }
        return (best.height, best.width)
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
