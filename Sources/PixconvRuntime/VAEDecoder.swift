import PixconvCore
import PixconvReaders

/// The decoder half of diffusers `AutoencoderKL` in f32: `autoencoder_kl.py::_decode` (post_quant_conv)
/// followed by `vae.py::Decoder.forward`:
///
///     z = latents / scaling_factor                       (as PixArtAlphaPipeline does before vae.decode)
///     z = post_quant_conv(z)                             1×1, latent → latent   (if use_post_quant_conv)
///     h = conv_in(z)                                     3×3, latent → C_last
///     h = mid_block(h)                                   resnet, attention (if mid_block_add_attention), resnet
///     for each up block i (channels reversed):           layers_per_block + 1 resnets, then
///         h = resnets(h); h = upsample2x+conv(h)         (no upsampler in the last block)
///     out = conv_out(SiLU(conv_norm_out(h)))             GroupNorm eps 1e-6, 3×3, C_first → out_channels
///
/// Images are decoded one at a time; the output is (B, out_channels, H·f, W·f) in roughly [-1, 1]
/// with f = `config.vaeScaleFactor`.
public final class VAEDecoder: Sendable {
    public let config: VAEConfig
    let postQuantConv: Conv2d?
    let convIn: Conv2d
    let midResnets: [VAEResnetBlock2D]
    let midAttention: VAEAttention?
    let upBlocks: [VAEUpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d

    /// Whether the 3×3 convolutions run bf16 products (f32 sums). With oneDNN's convolutions (the
    /// default, `Engine.convolution`) they never do: oneDNN runs f32 from every store. With the
    /// engine's own tiles they follow the arithmetic of the store, as the DiT's attention does:
    /// bf16 when the default arithmetic runs and the VAE holds a weight stored in a reduced type
    /// (Q8_0, Q4_0 or BF16: the q8_0, q4_0 and bf16 stores), on a CPU with AVX512_BF16; f32 for
    /// f16 and f32 stores, under `--compute f32` and where bf16 products are not faster than FMA
    /// (`Engine.bf16Pays`).
    public let runsBF16: Bool

    static func runsBF16(_ weights: Weights) -> Bool {
        guard Engine.compute == .native, Engine.convolution == .engine, Engine.bf16Pays,
              Conv2d.runsBF16(inChannels: 2, kernelSize: 3, padding: 1) else { return false }
        let reduced: Set<DType> = [.Q8_0, .Q4_0, .BF16]
        return weights.source.tensors.contains { $0.name.hasPrefix(weights.prefix) && reduced.contains($0.dtype) }
    }

    /// Largest output image, in pixels (8192²); activations then take up to C × 256 MiB.
    public static let maxPixels = 1 << 26

    /// One `UpDecoderBlock2D`: resnets then an optional upsampler.
    struct VAEUpBlock {
        let resnets: [VAEResnetBlock2D]
        let upsampler: VAEUpsample2D?
    }

    /// `weights`: the VAE's root scope, holding `post_quant_conv.*` and `decoder.*` (encoder tensors are ignored).
    public init(config: VAEConfig, weights: Weights) throws {
        try config.validate()
        self.config = config
        let bf16 = VAEDecoder.runsBF16(weights)
        runsBF16 = bf16
        let channels = config.blockOutChannels
        let groups = config.normNumGroups
        let latent = config.latentChannels
        let decoder = weights.scope("decoder")
        postQuantConv = config.usePostQuantConv
            ? try Conv2d(weights: weights.scope("post_quant_conv"), inChannels: latent, outChannels: latent,
                         kernelSize: 1, padding: 0)
            : nil
        let top = channels[channels.count - 1]
        convIn = try Conv2d(weights: decoder.scope("conv_in"), inChannels: latent, outChannels: top,
                            kernelSize: 3, padding: 1, bf16: bf16)
        let mid = decoder.scope("mid_block")
        midResnets = try (0..<2).map {
            try VAEResnetBlock2D(weights: mid.scope("resnets.\($0)"), inChannels: top, outChannels: top, groups: groups,
                                 bf16: bf16)
        }
        midAttention = config.midBlockAddAttention
            ? try VAEAttention(weights: mid.scope("attentions.0"), channels: top, groups: groups)
            : nil
        var blocks: [VAEUpBlock] = []
        var previous = top
        for (i, out) in channels.reversed().enumerated() {
            let scope = decoder.scope("up_blocks.\(i)")
            var resnets: [VAEResnetBlock2D] = []
            for j in 0...config.layersPerBlock {
                resnets.append(try VAEResnetBlock2D(weights: scope.scope("resnets.\(j)"),
                                                    inChannels: j == 0 ? previous : out, outChannels: out,
                                                    groups: groups, bf16: bf16))
            }
            let last = i == channels.count - 1
            let upsampler = last ? nil : try VAEUpsample2D(weights: scope.scope("upsamplers.0"), channels: out, bf16: bf16)
            blocks.append(VAEUpBlock(resnets: resnets, upsampler: upsampler))
            previous = out
        }
        upBlocks = blocks
        normOut = try GroupNorm(weights: decoder.scope("conv_norm_out"), groups: groups, channels: channels[0],
                                eps: 1e-6)
        convOut = try Conv2d(weights: decoder.scope("conv_out"), inChannels: channels[0],
                             outChannels: config.outChannels, kernelSize: 3, padding: 1, bf16: bf16)
    }

    /// The decoder of a diffusers `vae/` component (its `config.json` and weights).
    public convenience init(component: DiffusersComponent) throws {
        guard let json = component.configBytes else {
            throw RuntimeError.missingComponent("\(component.folder): vae config.json")
        }
        guard let source = component.weights else {
            throw RuntimeError.missingComponent("\(component.folder): vae weights")
        }
        try self.init(config: try VAEConfig(json: json, file: component.configPath ?? component.folder),
                      weights: Weights(source))
    }

    /// Decodes raw denoiser latents (B, latent_channels, height, width), dividing them by
    /// `scaling_factor` first, exactly as `PixArtAlphaPipeline` calls `vae.decode(latents / scaling_factor)`.
    /// Returns (B, out_channels, height·f, width·f), f = `config.vaeScaleFactor`, not yet clamped.
    /// `tiled`: as diffusers after `vae.enable_tiling()` (`tiledDecode`), where the latents exceed a tile.
    public func decode(latents: [Float], batch: Int, height: Int, width: Int, tiled: Bool = false) throws -> [Float] {
        guard batch > 0, height > 0, width > 0 else {
            throw RuntimeError.invalidInput("vae decode: batch \(batch), height \(height), width \(width) must be positive")
        }
        let f = config.vaeScaleFactor
        let (cells, o1) = height.multipliedReportingOverflow(by: width)
        let (perImage, o2) = cells.multipliedReportingOverflow(by: config.latentChannels)
        let (total, o3) = perImage.multipliedReportingOverflow(by: batch)
        let (pixels, o4) = cells.multipliedReportingOverflow(by: f * f)
        guard !(o1 || o2 || o3 || o4), pixels <= VAEDecoder.maxPixels else {
            throw RuntimeError.invalidInput("vae decode: size \(batch)×\(height)×\(width) is too large")
        }
        guard latents.count == total else {
            throw RuntimeError.invalidInput(
                "vae decode: expected \(total) latent values for (\(batch), \(config.latentChannels), \(height), \(width)), found \(latents.count)")
        }
        let outImage = config.outChannels * pixels
        var output = [Float](repeating: 0, count: batch * outImage)
        let scaling = config.scalingFactor
        for b in 0..<batch {
            let z = latents[b * perImage..<(b + 1) * perImage].map { $0 / scaling }
            let image = tiled && tiling.applies(height: height, width: width)
                ? decodeTiled(z, height: height, width: width) : decodeScaled(z, height: height, width: width)
            output.replaceSubrange(b * outImage..<(b + 1) * outImage, with: image)
        }
        return output
    }

    /// diffusers' tiling of `AutoencoderKL` (`enable_tiling()`): tiles of `latent` cells
    /// (`sample_size / f`) every `stride` cells (75 %), decoded to `sample` pixels; each tile is
    /// blended into the one above and the one to its left over `blend` pixels (25 % of the
    /// sample tile), then cropped to `keep` pixels.
    public struct Tiling: Sendable, Equatable {
        public let latent: Int, stride: Int, sample: Int, blend: Int, keep: Int

        public init(latent: Int, stride: Int, sample: Int, blend: Int, keep: Int) {
            (self.latent, self.stride, self.sample, self.blend, self.keep) = (latent, stride, sample, blend, keep)
        }

        init(config: VAEConfig) {
            sample = config.sampleSize
            latent = Int(Double(config.sampleSize) / Double(config.vaeScaleFactor))  // int(sample_size / 2^(n−1))
            stride = Int(Double(latent) * (1 - 0.25))
            blend = Int(Double(sample) * 0.25)
            keep = sample - blend
        }

        /// Whether diffusers would tile latents of this size (larger than a tile along either axis).
        public func applies(height: Int, width: Int) -> Bool { stride > 0 && (height > latent || width > latent) }
    }

    public var tiling: Tiling { Tiling(config: config) }

    /// Bytes the untiled decode of one image of latent size height × width needs at its peak,
    /// about: the last up block holds its input (C₁ channels, as wide as the image) and two
    /// activations of C₀ channels at once (measured: 540 MB for the SD VAE at 512²).
    public func decodeBytes(height: Int, width: Int) -> Int {
        let f = config.vaeScaleFactor, c = config.blockOutChannels
        let channels = (c.count > 1 ? c[1] : c[0]) + 2 * c[0]
        return height * f * width * f * channels * 4
    }

    /// `AutoencoderKL.tiled_decode` on one image of scaled latents z[latent, H, W]: tiles decoded
    /// one at a time through `VAETiles.assemble` (only the previous row of tiles is kept for
    /// blending); the blends use the neighbours as already blended, and the products
    /// `a · (1 − y/e) + b · (y/e)` in f32, as torch computes them.
    func decodeTiled(_ z: [Float], height: Int, width: Int) -> [Float] {
        let t = tiling, f = config.vaeScaleFactor
        let grid = VAETiles.Grid(height: height, width: width, size: t.latent, stride: t.stride, blend: t.blend, keep: t.keep)
        // diffusers' concatenation may not give the full size for this sample_size: then decode whole
        return VAETiles.assemble(z, inChannels: config.latentChannels, grid: grid, channels: config.outChannels,
                                 outHeight: height * f, outWidth: width * f, outputLength: { $0 * f }) { tile, h, w in
            VAETiles.Tile(data: decodeScaled(tile, height: h, width: w), h: h * f, w: w * f)
        } ?? decodeScaled(z, height: height, width: width)
    }

    /// One image of already-scaled latents z[latent, H, W] → [out_channels, H·f, W·f].
    func decodeScaled(_ z: [Float], height: Int, width: Int) -> [Float] {
        var h = height, w = width
        var x = postQuantConv.map { $0(z, height: h, width: w) } ?? z
        x = convIn(x, height: h, width: w)
        midResnets[0].apply(&x, height: h, width: w)
        if let midAttention { x = midAttention(x, spatial: h * w) }
        midResnets[1].apply(&x, height: h, width: w)
        for block in upBlocks {
            for resnet in block.resnets { resnet.apply(&x, height: h, width: w) }
            if let up = block.upsampler {
                x = up(x, height: h, width: w)
                h *= 2
                w *= 2
            }
        }
        let norm = normOut.channelAffine(x, spatial: h * w)
        return convOut.forward(x, height: h, width: w, input: .affine(scale: norm.scale, shift: norm.shift, silu: true))
    }
}
