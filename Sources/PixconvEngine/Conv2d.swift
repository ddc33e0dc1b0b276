import CEngine
import Dispatch
import Foundation

/// PyTorch `nn.Conv2d` with dilation 1, one group, a square kernel and zero padding, on one image at
/// a time: x[C_in, H, W] → y[C_out, (H + p + p' − k)/s + 1, (W + p + p' − k)/s + 1], with `padding`
/// p before the first row and column, `paddingEnd` p' (default p) after the last ones and `stride` s
/// (default 1). Stride 2 with p = 0, p' = 1 is diffusers' `Downsample2D` (`F.pad(x, (0, 1, 0, 1))`
/// then a stride-2 convolution without padding).
///
/// The fast path lowers the convolution to one matrix product per band of output rows (im2col, then
/// `Kernels.gemm`), so the scratch matrix stays near `scratchFloats` floats even at 1024² pixels;
/// 1×1 convolutions without padding multiply the input directly. The input can be read through a
/// `ConvInput` transform (a folded GroupNorm + SiLU, or nearest ×2 upsampling), applied band by band,
/// so the VAE never stores the normalised or upsampled activation. `Conv2d.reference` is the plain
/// direct convolution the tests compare it with.
///
/// 3×3 convolutions with padding 1 on a CPU with AVX-512 skip im2col: each band of input rows is
/// stored zero-padded (through the `ConvInput` transform) and the engine's `pe_conv3x3`
/// multiplies shifted views of it (an implicit matrix product), in f32, or with `bf16` (an even
/// C_in, AVX512_BF16) with bf16 products and f32 sums. `lowered: true` keeps im2col + sgemm (the
/// path of other shapes and CPUs). Strides other than 1 and asymmetric padding always run im2col +
/// sgemm.
public struct Conv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    /// Zero rows and columns before the image (top and left).
    public let padding: Int
    /// Zero rows and columns after the image (bottom and right); `padding` unless given.
    public let paddingEnd: Int
    public let stride: Int
    /// [C_out, C_in, k, k], PyTorch layout, for the im2col path; empty when the engine's 3×3
    /// convolution runs (`engineWeights` holds the weights then, and this copy is not kept).
    public let weight: [Float]
    /// [C_out] or nil.
    public let bias: [Float]?
    /// The weights of the engine's 3×3 convolution, in its depth order [C_out][ky][kx][C_in].
    public enum EngineWeights: Sendable {
        case bf16([UInt16])
        case f32([Float])
        /// oneDNN's copy of the weights in its blocked layout.
        case onednn(OneDNNConvolution)
    }
    public let engineWeights: EngineWeights?

    /// Upper bound (in floats) on the im2col scratch matrix (64 MiB); at least one output row is always lowered.
    public static let scratchFloats = 1 << 24

    /// `bf16`: run bf16 products where `Conv2d.runsBF16` allows it (f32 otherwise); `lowered`:
    /// im2col + sgemm even where the engine's 3×3 convolution could run; a `stride` other than 1 or a
    /// `paddingEnd` (default: `padding`) other than `padding` always runs im2col + sgemm.
    /// `backend`: which implementation runs a 3×3, stride-1, padding-1 convolution (default
    /// `Engine.convolution`); `.onednn` falls back to `.engine` where oneDNN refuses the shape.
    public init(weight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int, kernelSize: Int, padding: Int,
                bf16: Bool = false, lowered: Bool = false, stride: Int = 1, paddingEnd: Int? = nil,
                backend: Engine.Convolution = Engine.convolution) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && padding >= 0 && stride > 0)
        precondition((paddingEnd ?? padding) >= 0)
        precondition(weight.count == outChannels * inChannels * kernelSize * kernelSize)
        precondition(bias == nil || bias!.count == outChannels)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.padding = padding
        self.paddingEnd = paddingEnd ?? padding
        self.stride = stride
        self.bias = bias
        let plain = stride == 1 && self.paddingEnd == padding
        func depthOrder<T>(_ convert: (Float) -> T, zero: T) -> [T] {
            var w = [T](repeating: zero, count: weight.count)
            for o in 0..<outChannels {
                for ci in 0..<inChannels {
                    for s in 0..<9 { w[(o * 9 + s) * inChannels + ci] = convert(weight[(o * inChannels + ci) * 9 + s]) }
                }
            }
            return w
        }
        if plain && !lowered && backend == .onednn && kernelSize == 3 && padding == 1,
           let dnnl = OneDNNConvolution(weight: weight, inChannels: inChannels, outChannels: outChannels) {
            self.weight = []
            engineWeights = .onednn(dnnl)
        } else if plain && !lowered && bf16 && Conv2d.runsBF16(inChannels: inChannels, kernelSize: kernelSize, padding: padding) {
            self.weight = []
            engineWeights = .bf16(depthOrder(Conv2d.bf16, zero: 0))
        } else if plain && !lowered && Conv2d.runsEngineF32(kernelSize: kernelSize, padding: padding) {
            self.weight = []
            engineWeights = .f32(depthOrder({ $0 }, zero: 0))
        } else {
            self.weight = weight
            engineWeights = nil
        }
    }

    /// Whether a convolution of this shape runs bf16 products on this CPU when asked to.
    public static func runsBF16(inChannels: Int, kernelSize: Int, padding: Int) -> Bool {
        kernelSize == 3 && padding == 1 && inChannels % 2 == 0 && pe_conv3x3_isa(0) >= 0
    }

    /// Whether a convolution of this shape runs the engine's f32 3×3 convolution on this CPU.
    public static func runsEngineF32(kernelSize: Int, padding: Int) -> Bool {
        kernelSize == 3 && padding == 1 && pe_conv3x3_isa(1) >= 0
    }

    /// f32 → bf16, round to nearest even (the engine's rounding).
    static func bf16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if u & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (u &+ 0x7fff &+ ((u >> 16) & 1)) >> 16)
    }

    /// Reads `weight` [C_out, C_in, k, k] and `bias` [C_out] from `weights` (a scope such as `decoder.conv_in`).
    public init(weights: Weights, inChannels: Int, outChannels: Int, kernelSize: Int, padding: Int,
                bf16: Bool = false, stride: Int = 1, paddingEnd: Int? = nil,
                backend: Engine.Convolution = Engine.convolution) throws {
        let w = try weights.floats("weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        let b = try weights.floats("bias", shape: [outChannels])
        self.init(weight: w, bias: b, inChannels: inChannels, outChannels: outChannels,
                  kernelSize: kernelSize, padding: padding, bf16: bf16, stride: stride, paddingEnd: paddingEnd,
                  backend: backend)
    }

    /// (size + padding + paddingEnd − k) / stride + 1 along each axis, rounded down as PyTorch does
    /// (0 when the kernel does not fit).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        func side(_ n: Int) -> Int {
            let span = n + padding + paddingEnd - kernelSize
            return span < 0 ? 0 : span / stride + 1
        }
        return (side(height), side(width))
    }

    /// x[C_in, height, width] → y[C_out, height', width'] (see `outputSize`).
    public func callAsFunction(_ x: [Float], height: Int, width: Int) -> [Float] {
        forward(x, height: height, width: width)
    }

    /// `callAsFunction` with an explicit im2col budget (tests use tiny ones to force many row bands).
    public func apply(_ x: [Float], height: Int, width: Int, scratchFloats: Int) -> [Float] {
        forward(x, height: height, width: width, scratchFloats: scratchFloats)
    }

    /// The convolution of `input` applied to x[C_in, height, width] (its size before any upsampling).
    public func forward(
        _ x: [Float], height: Int, width: Int, input: ConvInput = .plain, scratchFloats: Int = Conv2d.scratchFloats
    ) -> [Float] {
        let (ih, iw) = input.upsample2x ? (2 * height, 2 * width) : (height, width)
        let (oh, ow) = outputSize(height: ih, width: iw)
        var y = [Float](repeating: 0, count: outChannels * max(oh, 0) * max(ow, 0))
        forward(x, height: height, width: width, input: input, addingTo: &y, scratchFloats: scratchFloats)
        return y
    }

    /// out[C_out, height', width'] += conv(input(x)) + bias — a residual added without another buffer.
    public func forward(
        _ x: [Float], height: Int, width: Int, input: ConvInput = .plain, addingTo out: inout [Float],
        scratchFloats: Int = Conv2d.scratchFloats
    ) {
        precondition(x.count == inChannels * height * width, "conv2d input size")
        let (ih, iw) = input.upsample2x ? (2 * height, 2 * width) : (height, width)
        let (oh, ow) = outputSize(height: ih, width: iw)
        precondition(oh > 0 && ow > 0, "conv2d output would be empty")
        let plane = oh * ow
        precondition(out.count == outChannels * plane, "conv2d output size")
        if let engineWeights {
            forwardEngine(x, height: height, width: width, input: input, weights: engineWeights, addingTo: &out,
                          scratchFloats: scratchFloats)
            return
        }
        out.withUnsafeMutableBufferPointer { yp in
            if let bias {
                for o in 0..<outChannels {
                    let v = bias[o]
                    for i in 0..<plane { yp[o * plane + i] += v }
                }
            }
            let depth = inChannels * kernelSize * kernelSize
            weight.withUnsafeBufferPointer { wp in
                x.withUnsafeBufferPointer { xp in
                    if kernelSize == 1 && padding == 0 && paddingEnd == 0 && stride == 1 && input.isPlain {
                        Kernels.gemm(transA: false, transB: false, m: outChannels, n: plane, k: inChannels,
                                     a: wp.baseAddress!, lda: inChannels, b: xp.baseAddress!, ldb: plane,
                                     beta: 1, c: yp.baseAddress!, ldc: plane)
                        return
                    }
                    let band = max(1, min(oh, scratchFloats / max(depth * ow, 1)))
                    let bandRows = min((band - 1) * stride + kernelSize, ih)
                    var rows = [Float](repeating: 0, count: inChannels * bandRows * iw)
                    var col = [Float](repeating: 0, count: depth * band * ow)
                    rows.withUnsafeMutableBufferPointer { rp in
                        col.withUnsafeMutableBufferPointer { cp in
                            var r0 = 0
                            while r0 < oh {
                                let count = min(band, oh - r0)
                                // Input rows [lo, hi) feed output rows [r0, r0 + count).
                                let lo = min(max(0, r0 * stride - padding), ih)
                                let hi = max(lo, min(ih, (r0 + count - 1) * stride + kernelSize - padding))
                                // Channels are independent: each core reads and lowers its own range.
                                Conv2d.parallelRanges(inChannels, work: depth * count * ow) { channels in
                                    input.read(xp, channels: channels, height: height, width: width,
                                               rows: lo..<hi, into: rp, rowsPerChannel: bandRows)
                                    im2col(rp, channels: channels, rowsPerChannel: bandRows, firstInputRow: lo,
                                           inputRows: hi - lo, inputWidth: iw, outWidth: ow, firstRow: r0,
                                           rows: count, into: cp)
                                }
                                Kernels.gemm(transA: false, transB: false, m: outChannels, n: count * ow, k: depth,
                                             a: wp.baseAddress!, lda: depth, b: cp.baseAddress!, ldb: count * ow,
                                             beta: 1, c: yp.baseAddress! + r0 * ow, ldc: plane)
                                r0 += count
                            }
                        }
                    }
                }
            }
        }
    }

    /// The engine's 3×3 path: `pe_conv3x3_image` writes each band of input rows (through `input`)
    /// zero-padded into reused scratch and adds conv + bias; a band holds about `scratchFloats`
    /// values.
    private func forwardEngine(
        _ x: [Float], height: Int, width: Int, input: ConvInput, weights: EngineWeights, addingTo out: inout [Float],
        scratchFloats: Int
    ) {
        let iw = input.upsample2x ? 2 * width : width
        let bandRows = max(1, scratchFloats / max(inChannels * (iw + 2), 1) - 2)
        func run(_ wk: UnsafeRawPointer?, f32: Bool, dnnl: OneDNNConvolution? = nil) -> Int32 {
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { yp in
                    (bias ?? []).withUnsafeBufferPointer { bp in
                        (input.scale ?? []).withUnsafeBufferPointer { sp in
                            (input.shift ?? []).withUnsafeBufferPointer { hp in
                                let source = pe_conv_input(
                                    x: xp.baseAddress, cin: Int64(inChannels), h: Int64(height), w: Int64(width),
                                    upsample2x: input.upsample2x ? 1 : 0, scale: input.scale == nil ? nil : sp.baseAddress,
                                    shift: input.shift == nil ? nil : hp.baseAddress, silu: input.silu ? 1 : 0)
                                if let dnnl {  // bands chosen by the engine unless a budget is given
                                    return pe_dnnl_conv3x3_image(dnnl.handle, source, bias == nil ? nil : bp.baseAddress,
                                                                 yp.baseAddress, 1,
                                                                 scratchFloats == Conv2d.scratchFloats ? 0 : Int64(bandRows))
                                }
                                return pe_conv3x3_image(source, wk, f32 ? 1 : 0, Int64(outChannels),
                                                        bias == nil ? nil : bp.baseAddress, yp.baseAddress, 1, Int64(bandRows))
                            }
                        }
                    }
                }
            }
        }
        let ran: Int32
        switch weights {
        case .bf16(let w): ran = w.withUnsafeBytes { run($0.baseAddress!, f32: false) }
        case .f32(let w): ran = w.withUnsafeBytes { run($0.baseAddress!, f32: true) }
        case .onednn(let c): ran = run(nil, f32: true, dnnl: c)
        }
        precondition(ran >= 0, "conv2d: the engine's convolution refused its arguments")
        Engine.record(type: "conv3x3", isa: pe_isa(rawValue: UInt32(ran)))
    }

    /// Lowers output rows [firstRow, firstRow + rows) into col[(ci·k + ky)·k + kx, (r − firstRow)·ow + ox]
    /// = input[ci, r·s + ky − p, ox·s + kx − p], zero outside the image. `band` holds input rows
    /// [firstInputRow, firstInputRow + inputRows) of each channel, `rowsPerChannel` rows apart.
    private func im2col(
        _ band: UnsafeMutableBufferPointer<Float>, channels: Range<Int>, rowsPerChannel: Int, firstInputRow: Int, inputRows: Int,
        inputWidth width: Int, outWidth ow: Int, firstRow: Int, rows: Int, into col: UnsafeMutableBufferPointer<Float>
    ) {
        let n = rows * ow
        let k = kernelSize, s = stride
        // ⌈a / s⌉ for either sign of a.
        func ceilDiv(_ a: Int) -> Int { a >= 0 ? (a + s - 1) / s : -((-a) / s) }
        for ci in channels {
            let plane = ci * rowsPerChannel * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let rowBase = ((ci * k + ky) * k + kx) * n
                    // Output columns whose input column ox·s + kx − p lies inside [0, width).
                    let lo = min(max(0, ceilDiv(padding - kx)), ow)
                    let hi = max(min(ow, ceilDiv(width + padding - kx)), lo)
                    for r in 0..<rows {
                        let dst = rowBase + r * ow
                        let iy = (firstRow + r) * s + ky - padding - firstInputRow
                        if iy < 0 || iy >= inputRows {
                            for ox in 0..<ow { col[dst + ox] = 0 }
                            continue
                        }
                        for ox in 0..<lo { col[dst + ox] = 0 }
                        let src = plane + iy * width + kx - padding
                        if s == 1 {
                            for ox in lo..<hi { col[dst + ox] = band[src + ox] }
                        } else {
                            for ox in lo..<hi { col[dst + ox] = band[src + ox * s] }
                        }
                        for ox in hi..<ow { col[dst + ox] = 0 }
                    }
                }
            }
        }
    }

    /// Runs `body` on contiguous ranges covering 0..<count, one per core, or on the whole range at once
    /// when `work` (elements touched) is too small to be worth the threads.
    public static func parallelRanges(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        Kernels.parallelRanges(count, work: work, body)
    }

    /// Direct convolution, one output at a time, accumulated in Double: the reference `callAsFunction` is tested against.
    public static func reference(
        _ x: [Float], height: Int, width: Int, weight: [Float], bias: [Float]?,
        inChannels: Int, outChannels: Int, kernelSize k: Int, padding p: Int, stride s: Int = 1, paddingEnd: Int? = nil
    ) -> [Float] {
        let pe = paddingEnd ?? p
        let oh = (height + p + pe - k) / s + 1, ow = (width + p + pe - k) / s + 1
        var y = [Float](repeating: 0, count: outChannels * oh * ow)
        for o in 0..<outChannels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc = Double(bias?[o] ?? 0)
                    for c in 0..<inChannels {
                        for ky in 0..<k {
                            let iy = oy * s + ky - p
                            if iy < 0 || iy >= height { continue }
                            for kx in 0..<k {
                                let ix = ox * s + kx - p
                                if ix < 0 || ix >= width { continue }
                                acc += Double(weight[((o * inChannels + c) * k + ky) * k + kx])
                                    * Double(x[(c * height + iy) * width + ix])
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = Float(acc)
                }
            }
        }
        return y
    }
}

/// A 3×3 convolution's weights prepared for oneDNN (its blocked layout, f32), freed with the value.
public final class OneDNNConvolution: @unchecked Sendable {  // immutable after init; oneDNN reads it from any thread
    let handle: OpaquePointer

    /// nil when oneDNN is unavailable or refuses the shape. `weight`: [C_out, C_in, 3, 3].
    init?(weight: [Float], inChannels: Int, outChannels: Int) {
        precondition(weight.count == outChannels * inChannels * 9)
        guard let h = weight.withUnsafeBufferPointer({
            pe_dnnl_conv3x3_create($0.baseAddress, Int64(inChannels), Int64(outChannels))
        }) else { return nil }
        handle = h
    }

    deinit { pe_dnnl_conv3x3_destroy(handle) }
}
