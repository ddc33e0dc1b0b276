/// diffusers `image_processor.py::VaeImageProcessor.preprocess` for one RGB image already at its
/// final size (resizing is `PixconvImage.ImageResize.lanczos`, PIL's filter): `pil_to_numpy`
/// (`np.array(image).astype(np.float32) / 255.0`), HWC → CHW, and `normalize` (`2.0 · x − 1.0`), in f32.
public enum VAEPreprocess {
    /// rgb[height, width, 3] (8-bit) → pixels (3, height, width) in [-1, 1].
    public static func normalize(rgb: [UInt8], width: Int, height: Int) -> [Float] {
        let plane = width * height
        precondition(rgb.count == 3 * plane, "preprocess input size")
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                let v = Float(rgb[i * 3 + c]) / 255
                out[c * plane + i] = 2 * v - 1
            }
        }
        return out
    }

    /// The size diffusers' `get_default_height_width` gives an image of `width` × `height` when no size
    /// is asked for: each side rounded down to a multiple of `vaeScaleFactor`.
    public static func defaultSize(width: Int, height: Int, vaeScaleFactor: Int) -> (width: Int, height: Int) {
        (width - width % vaeScaleFactor, height - height % vaeScaleFactor)
    }
}
