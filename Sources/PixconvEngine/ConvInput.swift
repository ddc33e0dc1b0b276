import Foundation

/// How `Conv2d` reads its input: as stored, or through the operation that precedes the convolution
/// in the VAE, computed on the fly for the rows of one band:
///
/// - `affine`: v·scale[c] + shift[c], then SiLU if `silu` — a GroupNorm whose statistics are already
///   folded into per-channel factors (`GroupNorm.channelAffine`), as in `conv1(SiLU(norm1(x)))`;
/// - `upsample2x`: nearest-neighbour ×2 (`F.interpolate(scale_factor=2, mode="nearest")`),
///   input[c, y, x] = x[c, y/2, x/2], as in `Upsample2D`.
///
/// The arithmetic is the same as applying the operation to the whole tensor first.
public struct ConvInput: Sendable {
    public var scale: [Float]? = nil
    public var shift: [Float]? = nil
    public var silu = false
    public var upsample2x = false

    public init(scale: [Float]? = nil, shift: [Float]? = nil, silu: Bool = false, upsample2x: Bool = false) {
        self.scale = scale
        self.shift = shift
        self.silu = silu
        self.upsample2x = upsample2x
    }

    public static let plain = ConvInput()

    public static func affine(scale: [Float], shift: [Float], silu: Bool) -> ConvInput {
        ConvInput(scale: scale, shift: shift, silu: silu)
    }

    public static let upsampled = ConvInput(upsample2x: true)

    public var isPlain: Bool { scale == nil && !silu && !upsample2x }

    /// Writes input rows `rows` (input coordinates, after any upsampling) of channels `channels` of
    /// x[C, height, width] into band[c · rowsPerChannel + (row − rows.lowerBound), 0..<width'].
    public func read(
        _ x: UnsafeBufferPointer<Float>, channels: Range<Int>, height: Int, width: Int, rows: Range<Int>,
        into band: UnsafeMutableBufferPointer<Float>, rowsPerChannel: Int
    ) {
        let iw = upsample2x ? 2 * width : width
        for c in channels {
            let a = scale?[c] ?? 1, b = shift?[c] ?? 0
            for iy in rows {
                let dst = (c * rowsPerChannel + iy - rows.lowerBound) * iw
                if upsample2x {
                    let src = (c * height + iy / 2) * width
                    for ix in 0..<iw { band[dst + ix] = x[src + ix / 2] }
                } else {
                    let src = (c * height + iy) * width
                    for ix in 0..<iw { band[dst + ix] = x[src + ix] }
                }
                if scale != nil {
                    for ix in 0..<iw { band[dst + ix] = band[dst + ix] * a + b }
                }
                if silu {
                    for ix in 0..<iw {
                        let v = band[dst + ix]
                        band[dst + ix] = v / (1 + expf(-v))
                    }
                }
            }
        }
    }
}
