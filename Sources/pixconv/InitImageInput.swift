import Foundation
import PixconvImage
import PixconvRuntime

/// `generate --init-image PNG`: the PNG read through libpng as diffusers' `load_image` sees it (RGB,
/// alpha dropped), resized with Pillow's Lanczos filter as `VaeImageProcessor.preprocess` resizes it,
/// and normalised to [-1, 1] (formats/img2img.md).
enum InitImageInput {
    /// The decoded PNG (8-bit RGB). Any failure is one error naming the file.
    static func read(path: String) throws -> (rgb: [UInt8], width: Int, height: Int) {
        do {
            return try PNGImage.readDroppingAlpha(path: path)
        } catch let error as ImageError {
            throw CheckFailed(description: "--init-image " + error.description)
        } catch {
            throw CheckFailed(description: "--init-image \(path): \(error)")
        }
    }

    /// img2img's first scheduler step for `strength`; a strength outside (0, 1], or one that leaves
    /// no step, is bad input (exit 1) naming `--strength`.
    static func checkStrength(_ strength: Double, steps: Int) throws -> Int {
        do {
            return try PixArtPipeline.img2imgFirstStep(steps: steps, strength: strength)
        } catch {
            throw CheckFailed(description: "--strength: \(error)")
        }
    }

    /// The init image at `width` × `height` (each default: the image's own size rounded down to a
    /// multiple of the VAE factor, as diffusers' `get_default_height_width`), resized when that differs.
    static func prepare(
        _ decoded: (rgb: [UInt8], width: Int, height: Int), path: String, width: Int?, height: Int?, vaeScaleFactor: Int
    ) throws -> InitImage {
        let natural = VAEPreprocess.defaultSize(width: decoded.width, height: decoded.height, vaeScaleFactor: vaeScaleFactor)
        let size = (width: width ?? natural.width, height: height ?? natural.height)
        guard size.width > 0, size.height > 0 else {
            throw CheckFailed(description: "--init-image \(path): a \(decoded.width)×\(decoded.height) image is smaller than the VAE factor \(vaeScaleFactor)")
        }
        let rgb = ImageResize.lanczos(rgb: decoded.rgb, width: decoded.width, height: decoded.height,
                                      toWidth: size.width, toHeight: size.height)
        return InitImage(width: size.width, height: size.height,
                         pixels: VAEPreprocess.normalize(rgb: rgb, width: size.width, height: size.height))
    }
}
