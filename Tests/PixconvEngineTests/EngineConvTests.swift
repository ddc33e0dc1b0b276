import CEngine
import XCTest
@testable import PixconvEngine

/// The engine's 3×3 convolution (implicit matrix product on zero-padded bands, bf16 and f32) against plain
/// double-precision convolutions of the same bf16-rounded inputs and weights, written here without
/// the engine: on awkward sizes (widths and channel counts that fill no tile), through the VAE's
/// input transforms (folded GroupNorm + SiLU, nearest ×2), in row bands of 1, 2, 3 rows and whole.
final class EngineConvTests: XCTestCase {
    /// Round to nearest even, as the tests define it (not the engine's code).
    static func roundBF16(_ f: Float) -> Float {
        let u = f.bitPattern
        let lsb = (u >> 16) & 1
        return Float(bitPattern: (u &+ 0x7fff &+ lsb) & 0xffff_0000)
    }

    /// y[o, r, c] = bias[o] + Σ x[ci, r+ky−1, c+kx−1] · w[o, ci, ky, kx] in Double, zero outside.
    static func direct(_ x: [Float], cin: Int, h: Int, w: Int, weight: [Float], bias: [Float], cout: Int) -> [Float] {
        var y = [Float](repeating: 0, count: cout * h * w)
        for o in 0..<cout {
            for r in 0..<h {
                for c in 0..<w {
                    var acc = 0.0
                    for ci in 0..<cin {
                        for ky in 0..<3 {
                            let iy = r + ky - 1
                            guard iy >= 0 && iy < h else { continue }
                            for kx in 0..<3 {
                                let ix = c + kx - 1
                                guard ix >= 0 && ix < w else { continue }
                                acc += Double(x[(ci * h + iy) * w + ix]) * Double(weight[((o * cin + ci) * 3 + ky) * 3 + kx])
                            }
                        }
                    }
                    y[(o * h + r) * w + c] = Float(acc) + bias[o]
                }
            }
        }
        return y
    }

    /// The input transforms a convolution reads x[cin, h, w] through, each with its input
    /// materialised here (not by the engine) and that input's height and width: none, the folded
    /// GroupNorm affine + SiLU, nearest ×2 upsampling.
    static func transformedInputs(_ x: [Float], cin: Int, h: Int, w: Int, scale: [Float], shift: [Float])
        -> [(name: String, input: ConvInput, materialised: [Float], height: Int, width: Int)] {
        [
            ("plain", .plain, x, h, w),
            ("affine+silu", .affine(scale: scale, shift: shift, silu: true), (0..<x.count).map { i in
                let v = x[i] * scale[i / (h * w)] + shift[i / (h * w)]
                return v / (1 + expf(-v))
            }, h, w),
            ("upsample2x", .upsampled, (0..<(cin * 4 * h * w)).map { i in
                let c = i / (4 * h * w), r = (i / (2 * w)) % (2 * h), col = i % (2 * w)
                return x[(c * h + r / 2) * w + col / 2]
            }, 2 * h, 2 * w),
        ]
    }

    func requireBF16() throws {
        guard Conv2d.runsBF16(inChannels: 2, kernelSize: 3, padding: 1) else {
            throw XCTSkip("bf16 convolution: this CPU lacks AVX512_BF16 (\(Engine.cpuFeatures)); the f32 path ran instead")
        }
    }

    /// The C entry points against the C reference on the same band, in bf16 and in f32:
    /// pe_conv3x3_fill's band holds the input (rounded to bf16 for bf16) in its layout, zero
    /// around it (checked value by value), and pe_conv3x3 equals pe_conv3x3_ref on it,
    /// overwriting and accumulating.
    func testEngineConvMatchesItsReference() throws {
        let cases: [(cin: Int, cout: Int, rows: Int, w: Int)] = [(2, 1, 1, 1), (6, 5, 7, 9), (64, 70, 13, 37), (4, 13, 3, 40), (130, 7, 2, 33), (3, 8, 5, 6)]
        var ran = 0
        for f32 in [false, true] {
            guard pe_conv3x3_isa(f32 ? 1 : 0) >= 0 else {
                print("EngineConvTests: pe_conv3x3 \(f32 ? "f32" : "bf16") not tested: this CPU lacks \(f32 ? "AVX-512" : "AVX512_BF16")")
                continue
            }
            var seed: UInt64 = 70
            for c in cases where f32 || c.cin % 2 == 0 {
                seed += 3
                let x = LinearTests.randoms(c.cin * c.rows * c.w, seed: seed, scale: 2)
                let bps = Int(pe_conv3x3_band_stride(Int64(c.rows), Int64(c.w)))
                var band = [UInt32](repeating: 0xffff_ffff, count: c.cin * bps)  // 4 bytes a value (f32) or a pair
                let filled = x.withUnsafeBufferPointer { xp in band.withUnsafeMutableBytes { bp in
                    pe_conv3x3_fill(pe_conv_input(x: xp.baseAddress, cin: Int64(c.cin), h: Int64(c.rows), w: Int64(c.w),
                                                  upsample2x: 0, scale: nil, shift: nil, silu: 0),
                                    0, Int64(c.rows), bp.baseAddress, Int64(bps), f32 ? 1 : 0)
                } }
                XCTAssertEqual(filled, 0)
                let w2 = c.w + 2
                func value(_ ci: Int, _ pixel: Int) -> Float {
                    if f32 { return Float(bitPattern: band[ci * bps + pixel]) }
                    let pair = band[(ci / 2) * bps + pixel]
                    return Float(bitPattern: (ci % 2 == 0 ? pair & 0xffff : pair >> 16) << 16)
                }
                for ci in 0..<c.cin {
                    for j in 0..<(c.rows + 2) {
                        for i in 0..<w2 {
                            let inside = j >= 1 && j <= c.rows && i >= 1 && i <= c.w
                            let v = inside ? x[(ci * c.rows + j - 1) * c.w + i - 1] : 0
                            let expected = f32 ? v : Self.roundBF16(v)
                            if value(ci, j * w2 + i) != expected {
                                XCTFail("\(c) f32 \(f32) band channel \(ci) row \(j) col \(i): \(value(ci, j * w2 + i)) ≠ \(expected)")
                                return
                            }
                        }
                    }
                }
                let wf = LinearTests.randoms(c.cout * 9 * c.cin, seed: seed + 1)
                let w16 = wf.map { Conv2d.bf16($0) }
                let bias = LinearTests.randoms(c.cout, seed: seed + 2)
                let start = LinearTests.randoms(c.cout * c.rows * c.w, seed: seed + 3)
                for accumulate in [Int32(0), 1] {
                    var fast = start, ref = start
                    func conv(_ wk: UnsafeRawPointer) -> (Int32, Int32) {
                        band.withUnsafeBytes { xp in bias.withUnsafeBufferPointer { bp in
                            fast.withUnsafeMutableBufferPointer { fp in ref.withUnsafeMutableBufferPointer { rp in
                                var a = pe_conv3x3_args(xb: xp.baseAddress, bps: Int64(bps), cin: Int64(c.cin), rows: Int64(c.rows),
                                                        w: Int64(c.w), wk: wk, f32: f32 ? 1 : 0, cout: Int64(c.cout),
                                                        bias: bp.baseAddress, y: fp.baseAddress, ycs: Int64(c.rows * c.w),
                                                        accumulate: accumulate)
                                let f = pe_conv3x3(a)
                                a.y = rp.baseAddress
                                return (f, pe_conv3x3_ref(a))
                            } }
                        } }
                    }
                    let isas = f32 ? wf.withUnsafeBytes { conv($0.baseAddress!) } : w16.withUnsafeBytes { conv($0.baseAddress!) }
                    XCTAssertEqual(isas.0, Int32((f32 ? PE_ISA_F32_512 : PE_ISA_BF16_512).rawValue), "\(c)")
                    XCTAssertEqual(isas.1, Int32(PE_ISA_REF.rawValue), "\(c)")
                    let worst = zip(fast, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 5e-5, "\(c) f32 \(f32) accumulate \(accumulate)")  // f32 sums of up to 1170 terms
                    ran += 1
                }
            }
        }
        if ran == 0 { throw XCTSkip("pe_conv3x3: this CPU has neither AVX-512 nor AVX512_BF16 (\(Engine.cpuFeatures))") }
    }

    /// Conv2d's engine f32 path and its im2col path equal the direct convolution (no rounding).
    func testConv2dF32PathsMatchDirectConvolution() throws {
        let (cin, cout, h, w) = (5, 4, 8, 13)
        let x = LinearTests.randoms(cin * h * w, seed: 81, scale: 3)
        let weight = LinearTests.randoms(cout * cin * 9, seed: 82, scale: 0.3)
        let bias = LinearTests.randoms(cout, seed: 83)
        let expected = Self.direct(x, cin: cin, h: h, w: w, weight: weight, bias: bias, cout: cout)
        for lowered in [false, true] {
            let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1,
                              lowered: lowered, backend: .engine)
            if !lowered && !Conv2d.runsEngineF32(kernelSize: 3, padding: 1) {
                print("EngineConvTests: the engine's f32 3×3 convolution not tested: this CPU lacks AVX-512")
            }
            if lowered { XCTAssertNil(conv.engineWeights) }
            for rows in [1, 3, 1000] {
                let y = conv.forward(x, height: h, width: w, scratchFloats: lowered ? rows * cin * 9 * w : cin * (rows + 2) * (w + 2))
                XCTAssertLessThanOrEqual(zip(y, expected).map { abs($0 - $1) }.max() ?? 0, 1e-4, "lowered \(lowered) band \(rows)")
            }
        }
    }

    /// Conv2d's bf16 path with each input transform and band size equals the direct convolution of
    /// the materialised, bf16-rounded input with the bf16-rounded weights.
    func testConv2dBF16MatchesDirectConvolution() throws {
        try requireBF16()
        let (cin, cout, h, w) = (6, 5, 9, 11)
        let x = LinearTests.randoms(cin * h * w, seed: 91, scale: 3)
        let weight = LinearTests.randoms(cout * cin * 9, seed: 92, scale: 0.3)
        let bias = LinearTests.randoms(cout, seed: 93)
        let scale = LinearTests.randoms(cin, seed: 94), shift = LinearTests.randoms(cin, seed: 95)
        let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, bf16: true,
                          backend: .engine)
        if case .bf16 = conv.engineWeights {} else { XCTFail("bf16 weights expected") }
        let roundedW = weight.map(Self.roundBF16)
        let inputs = Self.transformedInputs(x, cin: cin, h: h, w: w, scale: scale, shift: shift)
        for (name, input, materialised, mh, mw) in inputs {
            let expected = Self.direct(materialised.map(Self.roundBF16), cin: cin, h: mh, w: mw, weight: roundedW, bias: bias, cout: cout)
            for rows in [1, 2, 3, 1000] {
                let budget = cin * (rows + 2) * (mw + 2)
                let y = conv.forward(x, height: h, width: w, input: input, scratchFloats: budget)
                let worst = zip(y, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 2e-5, "\(name) band \(rows)")
            }
            // the bf16 rounding itself stays within bf16's precision of the f32 result
            let f32 = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1,
                             backend: .engine)
                .forward(x, height: h, width: w, input: input)
            let y = conv.forward(x, height: h, width: w, input: input)
            let scaleOfY = f32.map { abs($0) }.max() ?? 1
            XCTAssertLessThanOrEqual(zip(y, f32).map { abs($0 - $1) }.max() ?? 0, 0.02 * scaleOfY, name)
        }
        // adding into an existing buffer (the residual)
        var out = LinearTests.randoms(cout * h * w, seed: 96)
        let before = out
        conv.forward(x, height: h, width: w, addingTo: &out)
        let plain = Self.direct(x.map(Self.roundBF16), cin: cin, h: h, w: w, weight: roundedW, bias: bias, cout: cout)
        XCTAssertLessThanOrEqual(zip(out, zip(before, plain)).map { abs($0 - ($1.0 + $1.1)) }.max() ?? 0, 1e-4)
    }

    /// Shapes the bf16 path does not take (odd C_in, other kernels) keep f32.
    func testOtherShapesStayF32() {
        XCTAssertFalse(Conv2d.runsBF16(inChannels: 3, kernelSize: 3, padding: 1))
        XCTAssertFalse(Conv2d.runsBF16(inChannels: 4, kernelSize: 1, padding: 0))
        let conv = Conv2d(weight: [Float](repeating: 0.5, count: 2 * 3 * 9), bias: [0, 0], inChannels: 3, outChannels: 2,
                          kernelSize: 3, padding: 1, bf16: true, backend: .engine)
        if case .bf16 = conv.engineWeights { XCTFail("odd C_in must not run bf16") }
    }

    /// oneDNN's path (the default backend where it starts) equals the direct convolution of the
    /// materialised input, through every input transform, in bands of 1, 2, 3 rows and chosen
    /// ones, with and without bias, overwriting and adding; shapes that fill no oneDNN block
    /// (1 channel, 17 → 33 channels, 1-pixel and odd widths).
    func testConv2dOneDNNMatchesDirectConvolution() throws {
        guard Engine.oneDNNAvailable else {
            throw XCTSkip("oneDNN: its CPU engine did not start here (libdnnl); the engine's convolutions ran instead")
        }
        let shapes: [(cin: Int, cout: Int, h: Int, w: Int)] = [(1, 1, 1, 1), (3, 5, 7, 9), (17, 33, 13, 5), (48, 40, 10, 23), (8, 16, 2, 1)]
        var seed: UInt64 = 300
        for s in shapes {
            seed += 7
            let (cin, cout, h, w) = s
            let x = LinearTests.randoms(cin * h * w, seed: seed, scale: 3)
            let weight = LinearTests.randoms(cout * cin * 9, seed: seed + 1, scale: 0.3)
            let bias = LinearTests.randoms(cout, seed: seed + 2)
            let scale = LinearTests.randoms(cin, seed: seed + 3), shift = LinearTests.randoms(cin, seed: seed + 4)
            let inputs = Self.transformedInputs(x, cin: cin, h: h, w: w, scale: scale, shift: shift)
            for withBias in [true, false] {
                let conv = Conv2d(weight: weight, bias: withBias ? bias : nil, inChannels: cin, outChannels: cout,
                                  kernelSize: 3, padding: 1, bf16: true, backend: .onednn)
                guard case .onednn = conv.engineWeights else { XCTFail("\(s): oneDNN weights expected"); continue }
                for (name, input, materialised, mh, mw) in inputs {
                    let zeros = [Float](repeating: 0, count: cout)
                    let expected = Self.direct(materialised, cin: cin, h: mh, w: mw, weight: weight, bias: withBias ? bias : zeros, cout: cout)
                    let size = expected.map { abs($0) }.max() ?? 1
                    for rows in [1, 2, 3, nil] {
                        let y = rows.map { conv.forward(x, height: h, width: w, input: input, scratchFloats: cin * ($0 + 2) * (mw + 2)) }
                            ?? conv.forward(x, height: h, width: w, input: input)
                        let worst = zip(y, expected).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThanOrEqual(worst, 1e-5 * max(1, size), "\(s) \(name) bias \(withBias) band \(rows.map(String.init) ?? "chosen")")
                    }
                    var out = LinearTests.randoms(cout * mh * mw, seed: seed + 5)
                    let before = out
                    conv.forward(x, height: h, width: w, input: input, addingTo: &out)
                    let worst = zip(out, zip(before, expected)).map { abs($0 - ($1.0 + $1.1)) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 1e-5 * max(1, size), "\(s) \(name) adding, bias \(withBias)")
                }
            }
        }
        Engine.resetKernelRecord()
        _ = Conv2d(weight: [Float](repeating: 0.5, count: 2 * 2 * 9), bias: nil, inChannels: 2, outChannels: 2, kernelSize: 3,
                   padding: 1, backend: .onednn).forward([Float](repeating: 1, count: 2 * 4 * 4), height: 4, width: 4)
        XCTAssertEqual(Engine.kernelsUsed["conv3x3"], "onednn-f32")
    }
}
