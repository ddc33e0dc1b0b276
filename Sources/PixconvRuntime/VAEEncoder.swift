import Foundation
import PixconvCore
import PixconvReaders

/// The encoder half of diffusers `AutoencoderKL` in f32: `autoencoder_kl.py::_encode`
/// (`vae.py::Encoder.forward`, then quant_conv) and `encode`'s `DiagonalGaussianDistribution`:
///
///     h = conv_in(x)                                     3×3, in_channels → C_first
///     for each down block i:                             layers_per_block resnets, then
///         h = resnets(h); h = downsample(h)              F.pad(h, (0, 1, 0, 1)) + 3×3 stride 2 (not in the last block)
///     h = mid_block(h)                                   resnet, attention (if mid_block_add_attention), resnet
///     h = conv_out(SiLU(conv_norm_out(h)))               GroupNorm eps 1e-6, 3×3, C_last → 2·latent_channels
///     moments = quant_conv(h)                            1×1, 2·latent → 2·latent (if use_quant_conv)
///     mean, logvar = moments split by channel;  logvar = clamp(logvar, −30, 20);  std = exp(0.5·logvar)
///
/// Images (B, in_channels, H, W), roughly in [-1, 1] (`VaeImageProcessor.preprocess`), are encoded one at a
/// time; the latent grid is H/f × W/f for the even sizes the pipelines use (f = `config.vaeScaleFactor`;
/// each downsample maps n to ⌊(n − 2)/2⌋ + 1 as PyTorch does).
public final class VAEEncoder: Sendable {
    public let config: VAEConfig
    let convIn: Conv2d
    let downBlocks: [VAEDownBlock]
    let midResnets: [VAEResnetBlock2D]
    let midAttention: VAEAttention?
    let normOut: GroupNorm
    let convOut: Conv2d
    let quantConv: Conv2d?
    /// Whether the stride-1 3×3 convolutions run bf16 products (same rule as `VAEDecoder.runsBF16`).
    public let runsBF16: Bool

    /// Largest input image, in pixels (8192²).
    public static let maxPixels = VAEDecoder.maxPixels

    /// One `DownEncoderBlock2D`: resnets then an optional downsampler.
    struct VAEDownBlock {
        let resnets: [VAEResnetBlock2D]
        let downsampler: Conv2d?
    }

    /// `weights`: the VAE's root scope, holding `encoder.*` and `quant_conv.*` (decoder tensors are ignored).
    /// The encoder's blocks are `DownEncoderBlock2D`s (the only kind `AutoencoderKL` builds), one per
    /// `block_out_channels` entry, with the decoder's `layers_per_block`, groups and attention flag.
    public init(config: VAEConfig, weights: Weights) throws {
        try config.validate()
        guard (1...1 << 16).contains(config.inChannels) else {
            throw RuntimeError.invalidInput("vae config: in_channels \(config.inChannels) out of range")
        }
        self.config = config
        let bf16 = VAEDecoder.runsBF16(weights)
        runsBF16 = bf16
        let channels = config.blockOutChannels
        let groups = config.normNumGroups
        let encoder = weights.scope("encoder")
        guard encoder.has("conv_in.weight") else {
            throw RuntimeError.missingComponent(
                "the VAE encoder (\(weights.prefix)encoder.conv_in.weight); convert the model again with a VAE that has it")
        }
        convIn = try Conv2d(weights: encoder.scope("conv_in"), inChannels: config.inChannels, outChannels: channels[0],
                            kernelSize: 3, padding: 1, bf16: bf16)
        var blocks: [VAEDownBlock] = []
        var previous = channels[0]
        for (i, out) in channels.enumerated() {
            let scope = encoder.scope("down_blocks.\(i)")
            var resnets: [VAEResnetBlock2D] = []
            for j in 0..<config.layersPerBlock {
                resnets.append(try VAEResnetBlock2D(weights: scope.scope("resnets.\(j)"),
                                                    inChannels: j == 0 ? previous : out, outChannels: out,
                                                    groups: groups, bf16: bf16))
            }
            let last = i == channels.count - 1
            // Downsample2D(use_conv=True, padding=0): F.pad (0, 1, 0, 1), then conv 3×3 stride 2 padding 0.
            let down = last ? nil : try Conv2d(weights: scope.scope("downsamplers.0.conv"), inChannels: out,
                                               outChannels: out, kernelSize: 3, padding: 0, stride: 2, paddingEnd: 1)
            blocks.append(VAEDownBlock(resnets: resnets, downsampler: down))
            previous = out
        }
        downBlocks = blocks
        let top = channels[channels.count - 1]
        let mid = encoder.scope("mid_block")
        midResnets = try (0..<2).map {
            try VAEResnetBlock2D(weights: mid.scope("resnets.\($0)"), inChannels: top, outChannels: top, groups: groups,
                                 bf16: bf16)
        }
        midAttention = config.midBlockAddAttention
            ? try VAEAttention(weights: mid.scope("attentions.0"), channels: top, groups: groups)
            : nil
        normOut = try GroupNorm(weights: encoder.scope("conv_norm_out"), groups: groups, channels: top, eps: 1e-6)
        let moments = 2 * config.latentChannels
        convOut = try Conv2d(weights: encoder.scope("conv_out"), inChannels: top, outChannels: moments,
                             kernelSize: 3, padding: 1, bf16: bf16)
        // `use_quant_conv` is not part of `VAEConfig`: the layer runs when the VAE has its weights
        // (diffusers' default, true, and every PixArt VAE).
        quantConv = weights.has("quant_conv.weight")
            ? try Conv2d(weights: weights.scope("quant_conv"), inChannels: moments, outChannels: moments,
                         kernelSize: 1, padding: 0)
            : nil
    }

    /// The latent grid of an image of `height` × `width` pixels.
    public func latentSize(height: Int, width: Int) -> (height: Int, width: Int) {
        var h = height, w = width
        for block in downBlocks where block.downsampler != nil {
            h = (h - 2) / 2 + 1
            w = (w - 2) / 2 + 1
        }
        return (h, w)
    }

    /// The latent length of `n` pixels along one axis, or nil where a downsampler would see fewer
    /// than 2 cells (its padded input is then smaller than the 3×3 kernel, which PyTorch refuses).
    func latentLength(_ n: Int) -> Int? {
        var n = n
        for block in downBlocks where block.downsampler != nil {
            guard n >= 2 else { return nil }
            n = (n - 2) / 2 + 1
        }
        return n >= 1 ? n : nil
    }

    /// diffusers' tiled encoding of `AutoencoderKL` (`enable_tiling()`, `_tiled_encode`): pixel tiles
    /// of `sample` (`tile_sample_min_size`, the config's `sample_size`) every `stride` pixels
    /// (`int(sample · 0.75)`), each through the encoder and quant_conv by itself; the moments of each
    /// tile are blended into the tile above and the one to its left over `blend` latent cells
    /// (`int(latent · 0.25)`, latent = `tile_latent_min_size` = `int(sample_size / f)`), then cropped
    /// to `keep` = latent − blend cells.
    public struct Tiling: Sendable, Equatable {
        public let sample: Int, stride: Int, latent: Int, blend: Int, keep: Int

        public init(sample: Int, stride: Int, latent: Int, blend: Int, keep: Int) {
            (self.sample, self.stride, self.latent, self.blend, self.keep) = (sample, stride, latent, blend, keep)
        }

        public init(config: VAEConfig) {
            sample = config.sampleSize
            latent = Int(Double(config.sampleSize) / Double(config.vaeScaleFactor))  // int(sample_size / 2^(n−1))
            stride = Int(Double(sample) * (1 - 0.25))  // overlap_size
            blend = Int(Double(latent) * 0.25)  // blend_extent
            keep = latent - blend  // row_limit
        }

        /// Whether diffusers would tile an image of this size (`_encode`: larger than a tile along
        /// either axis).
        public func applies(height: Int, width: Int) -> Bool { stride > 0 && (height > sample || width > sample) }
    }

    public var tiling: Tiling { Tiling(config: config) }

    /// Bytes the untiled encode of one image of height × width pixels needs at its peak, about:
    /// in the first down block the block's input and its conv1 output (2·C₀ channels, full size),
    /// about C₀/2 more for the convolutions' buffers, and the image twice (the caller's and the
    /// per-image copy), all f32 (measured: 325 MiB above the loaded weights for the SD VAE at 512²).
    public static func encodeBytes(config: VAEConfig, height: Int, width: Int) -> Int {
        let c0 = config.blockOutChannels[0]
        return height * width * (2 * c0 + c0 / 2 + 2 * config.inChannels) * 4
    }

    public func encodeBytes(height: Int, width: Int) -> Int {
        VAEEncoder.encodeBytes(config: config, height: height, width: width)
    }

    /// diffusers `vae.encode(images).latent_dist` for images (B, in_channels, height, width).
    /// `tiled`: as diffusers after `vae.enable_tiling()` (`_tiled_encode`), where the image exceeds
    /// a tile (`tiling.applies`); the distribution is then that of the blended moments.
    public func encode(images: [Float], batch: Int, height: Int, width: Int, tiled: Bool = false) throws -> VAELatentDistribution {
        guard batch > 0, height >= 2, width >= 2 else {
            throw RuntimeError.invalidInput("vae encode: batch \(batch), height \(height), width \(width) are too small")
        }
        let (pixels, o1) = height.multipliedReportingOverflow(by: width)
        let (perImage, o2) = pixels.multipliedReportingOverflow(by: config.inChannels)
        let (total, o3) = perImage.multipliedReportingOverflow(by: batch)
        guard !(o1 || o2 || o3), pixels <= VAEEncoder.maxPixels else {
            throw RuntimeError.invalidInput("vae encode: size \(batch)×\(height)×\(width) is too large")
        }
        guard images.count == total else {
            throw RuntimeError.invalidInput(
                "vae encode: expected \(total) values for (\(batch), \(config.inChannels), \(height), \(width)), found \(images.count)")
        }
        let (lh, lw) = latentSize(height: height, width: width)
        var parameters: [Float] = []
        parameters.reserveCapacity(batch * 2 * config.latentChannels * lh * lw)
        let tiles = tiled && tiling.applies(height: height, width: width)
        for b in 0..<batch {
            let x = Array(images[b * perImage..<(b + 1) * perImage])
            parameters += tiles ? encodeTiled(x, height: height, width: width) : encodeOne(x, height: height, width: width)
        }
        return VAELatentDistribution(parameters: parameters, batch: batch, channels: config.latentChannels,
                                     height: lh, width: lw)
    }

    /// `AutoencoderKL._tiled_encode` on one image x[in_channels, H, W] → moments [2·latent, h, w]:
    /// each pixel tile through `encodeOne` (encoder and quant_conv), blended and cropped by
    /// `VAETiles.assemble` as `blend_v` / `blend_h` do. Where the crops would not add up to the
    /// untiled latent size (a `sample_size` that is not a multiple of f, or an edge tile too small
    /// to downsample), the image is encoded whole.
    func encodeTiled(_ x: [Float], height: Int, width: Int) -> [Float] {
        let t = tiling, (lh, lw) = latentSize(height: height, width: width)
        let grid = VAETiles.Grid(height: height, width: width, size: t.sample, stride: t.stride, blend: t.blend, keep: t.keep)
        return VAETiles.assemble(x, inChannels: config.inChannels, grid: grid, channels: 2 * config.latentChannels,
                                 outHeight: lh, outWidth: lw, outputLength: { self.latentLength($0) }) { tile, h, w in
            let size = latentSize(height: h, width: w)
            return VAETiles.Tile(data: encodeOne(tile, height: h, width: w), h: size.height, w: size.width)
        } ?? encodeOne(x, height: height, width: width)
    }

    /// One image x[in_channels, H, W] → moments [2·latent, h, w] (quant_conv output).
    func encodeOne(_ x: [Float], height: Int, width: Int) -> [Float] {
        var h = height, w = width
        var x = convIn(x, height: h, width: w)
        for block in downBlocks {
            for resnet in block.resnets { resnet.apply(&x, height: h, width: w) }
            if let down = block.downsampler {
                let size = down.outputSize(height: h, width: w)
                x = down(x, height: h, width: w)
                h = size.height
                w = size.width
            }
        }
        midResnets[0].apply(&x, height: h, width: w)
        if let midAttention { x = midAttention(x, spatial: h * w) }
        midResnets[1].apply(&x, height: h, width: w)
        let norm = normOut.channelAffine(x, spatial: h * w)
        x = convOut.forward(x, height: h, width: w, input: .affine(scale: norm.scale, shift: norm.shift, silu: true))
        if let quantConv { x = quantConv(x, height: h, width: w) }
        return x
    }
}

/// diffusers `DiagonalGaussianDistribution` of `AutoencoderKL.encode`: moments (B, 2C, h, w) split
/// into mean (first C channels) and logvar (clamped to [−30, 20]), std = exp(0.5·logvar), in f32.
public struct VAELatentDistribution: Sendable {
    public let batch: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    /// (B, 2C, h, w): the quant_conv output.
    public let parameters: [Float]
    /// (B, C, h, w) each.
    public let mean: [Float]
    public let logvar: [Float]
    public let std: [Float]

    public init(parameters: [Float], batch: Int, channels: Int, height: Int, width: Int) {
        precondition(parameters.count == batch * 2 * channels * height * width)
        self.parameters = parameters
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        let plane = channels * height * width
        var mean = [Float](), logvar = [Float]()
        mean.reserveCapacity(batch * plane)
        logvar.reserveCapacity(batch * plane)
        for b in 0..<batch {
            let base = b * 2 * plane
            mean += parameters[base..<base + plane]
            logvar += parameters[base + plane..<base + 2 * plane].map { min(max($0, -30), 20) }
        }
        self.mean = mean
        self.logvar = logvar
        std = logvar.map { expf(0.5 * $0) }
    }

    /// Values per image (C·h·w).
    public var perImage: Int { channels * height * width }

    /// `latent_dist.sample(generator)` for image `index`: mean + std · randn(C, h, w), the normals drawn
    /// from `generator` as diffusers' `randn_tensor(mean.shape, generator)` does for a batch of one.
    public func sample(index: Int, generator: inout TorchGenerator) -> [Float] {
        let n = perImage, base = index * n
        let noise = generator.randn(count: n)
        return (0..<n).map { mean[base + $0] + std[base + $0] * noise[$0] }
    }

    /// `latent_dist.mode()`: the mean of image `index`.
    public func mode(index: Int) -> [Float] {
        Array(mean[index * perImage..<(index + 1) * perImage])
    }
}
