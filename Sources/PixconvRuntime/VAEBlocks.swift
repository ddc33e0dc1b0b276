/// diffusers `models/resnet.py::ResnetBlock2D` as the VAE decoder builds it (no time embedding,
/// `time_embedding_norm="default"`, pre-norm, output_scale_factor 1, dropout inactive):
///
///     h   = conv1(SiLU(norm1(x)))            norm: GroupNorm(groups, eps 1e-6), conv 3×3 pad 1
///     h   = conv2(SiLU(norm2(h)))
///     out = shortcut(x) + h                  shortcut = `conv_shortcut` 1×1 iff C_in ≠ C_out
///
/// Activations are one image, x[C, H, W].
struct VAEResnetBlock2D {
    let inChannels: Int
    let outChannels: Int
    let norm1: GroupNorm
    let conv1: Conv2d
    let norm2: GroupNorm
    let conv2: Conv2d
    let shortcut: Conv2d?

    /// `weights`: a scope such as `decoder.up_blocks.2.resnets.0`.
    init(weights: Weights, inChannels: Int, outChannels: Int, groups: Int, eps: Float = 1e-6, bf16: Bool = false) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        norm1 = try GroupNorm(weights: weights.scope("norm1"), groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(weights: weights.scope("conv1"), inChannels: inChannels, outChannels: outChannels,
                           kernelSize: 3, padding: 1, bf16: bf16)
        norm2 = try GroupNorm(weights: weights.scope("norm2"), groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(weights: weights.scope("conv2"), inChannels: outChannels, outChannels: outChannels,
                           kernelSize: 3, padding: 1, bf16: bf16)
        if inChannels != outChannels {
            shortcut = try Conv2d(weights: weights.scope("conv_shortcut"), inChannels: inChannels,
                                  outChannels: outChannels, kernelSize: 1, padding: 0)
        } else {
            shortcut = nil
        }
    }

    /// x[C_in, H, W] → [C_out, H, W]
    func callAsFunction(_ x: [Float], height: Int, width: Int) -> [Float] {
        var y = x
        apply(&y, height: height, width: width)
        return y
    }

    /// x[C_in, H, W] → [C_out, H, W] in place. The normalised activations are never stored: each
    /// GroupNorm + SiLU is folded into the next convolution's input (`ConvInput.affine`), and conv2
    /// adds into the residual buffer, so the peak is about two activations of this block.
    func apply(_ x: inout [Float], height: Int, width: Int) {
        let spatial = height * width
        let n1 = norm1.channelAffine(x, spatial: spatial)
        let h = conv1.forward(x, height: height, width: width,
                              input: .affine(scale: n1.scale, shift: n1.shift, silu: true))
        if let shortcut { x = shortcut(x, height: height, width: width) }
        let n2 = norm2.channelAffine(h, spatial: spatial)
        conv2.forward(h, height: height, width: width, input: .affine(scale: n2.scale, shift: n2.shift, silu: true),
                      addingTo: &x)
    }
}

/// diffusers `models/upsampling.py::Upsample2D(use_conv=True)`: nearest-neighbour ×2
/// (out[y, x] = in[y/2, x/2]) followed by `conv` 3×3 pad 1 with the same channel count.
struct VAEUpsample2D {
    let channels: Int
    let conv: Conv2d

    /// `weights`: a scope such as `decoder.up_blocks.0.upsamplers.0`.
    init(weights: Weights, channels: Int, bf16: Bool = false) throws {
        self.channels = channels
        conv = try Conv2d(weights: weights.scope("conv"), inChannels: channels, outChannels: channels,
                          kernelSize: 3, padding: 1, bf16: bf16)
    }

    /// x[C, H, W] → [C, 2H, 2W]; the upsampled tensor is read band by band, never stored.
    func callAsFunction(_ x: [Float], height: Int, width: Int) -> [Float] {
        conv.forward(x, height: height, width: width, input: .upsampled)
    }

    /// Nearest-neighbour ×2 (`F.interpolate(scale_factor=2.0, mode="nearest")`), materialised (for tests).
    static func nearest2x(_ x: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        let ow = 2 * width
        var y = [Float](repeating: 0, count: channels * 4 * height * width)
        y.withUnsafeMutableBufferPointer { yp in
            x.withUnsafeBufferPointer { xp in
                for c in 0..<channels {
                    for iy in 0..<height {
                        let src = (c * height + iy) * width
                        let dst0 = (c * 2 * height + 2 * iy) * ow
                        for ix in 0..<width {
                            let v = xp[src + ix]
                            yp[dst0 + 2 * ix] = v
                            yp[dst0 + 2 * ix + 1] = v
                        }
                        for ox in 0..<ow { yp[dst0 + ow + ox] = yp[dst0 + ox] }
                    }
                }
            }
        }
        return y
    }
}
