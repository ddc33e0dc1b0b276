/// diffusers `image_processor.py::VaeImageProcessor.postprocess` for the PixArt-α pipeline:
/// `denormalize` ((x/2 + 0.5).clamp(0, 1)), NCHW → NHWC, and for PIL output `numpy_to_pil`'s
/// `(x · 255).round().astype("uint8")` with numpy's round-half-to-even.
public enum VAEPostprocess {
    /// Image `index` of x[B, C, H, W] (decoder output, about [-1, 1]) as a float image [H, W, C] in [0, 1].
    /// NaN becomes 0 (torch would keep NaN, which has no pixel value).
    public static func floatImage(_ x: [Float], index: Int, channels: Int, height: Int, width: Int) -> [Float] {
        let plane = height * width
        let base = index * channels * plane
        precondition(index >= 0 && x.count >= base + channels * plane, "postprocess input size")
        var out = [Float](repeating: 0, count: channels * plane)
        out.withUnsafeMutableBufferPointer { op in
            x.withUnsafeBufferPointer { xp in
                for c in 0..<channels {
                    for i in 0..<plane {
                        let v = xp[base + c * plane + i] / 2 + 0.5
                        op[i * channels + c] = v.isNaN ? 0 : min(max(v, 0), 1)
                    }
                }
            }
        }
        return out
    }

    /// Every image of x[B, C, H, W] as [H, W, C] floats in [0, 1].
    public static func floatImages(_ x: [Float], batch: Int, channels: Int, height: Int, width: Int) -> [[Float]] {
        (0..<batch).map { floatImage(x, index: $0, channels: channels, height: height, width: width) }
    }

    /// A float image in [0, 1] as bytes: (v·255) rounded half-to-even in f32, like `(images * 255).round()`
    /// on a float32 numpy array. Values outside [0, 1] (and NaN) are clamped first.
    public static func bytes(_ image: [Float]) -> [UInt8] {
        image.map { v in
            let clamped = v.isNaN ? 0 : min(max(v, 0), 1)
            return UInt8((clamped * 255).rounded(.toNearestOrEven))
        }
    }

    /// Image `index` of decoder output x[B, C, H, W] as 8-bit HWC pixels (RGB for C = 3).
    public static func rgbBytes(_ x: [Float], index: Int, channels: Int = 3, height: Int, width: Int) -> [UInt8] {
        bytes(floatImage(x, index: index, channels: channels, height: height, width: width))
    }
}
