import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// Conv2d (im2col + BLAS) against its direct reference and against torch.nn.functional outputs
/// (fixtures/vae/ops.safetensors from scripts/make_vae_reference.py); GroupNorm and nearest ×2 likewise.
final class ConvTests: XCTestCase {
    private func convOps() throws -> SafetensorsFile {
        try SafetensorsFile(path: vaeFixturePath("fixtures/vae/ops.safetensors"))
    }

    func testConvMatchesTorch() throws {
        let ops = try convOps()
        let x = try ops.vaeFloats("conv_x")  // [5, 7, 9]
        for (name, k, p) in [("conv3", 3, 1), ("conv1", 1, 0), ("conv5", 5, 2), ("conv3v", 3, 0)] {
            let conv = Conv2d(weight: try ops.vaeFloats(name + "_w"), bias: try ops.vaeFloats(name + "_b"),
                              inChannels: 5, outChannels: 6, kernelSize: k, padding: p)
            let expected = try ops.vaeFloats(name + "_y")
            let fast = conv(x, height: 7, width: 9)
            let reference = Conv2d.reference(x, height: 7, width: 9, weight: try ops.vaeFloats(name + "_w"), bias: conv.bias,
                                             inChannels: 5, outChannels: 6, kernelSize: k, padding: p)
            XCTAssertEqual(fast.count, expected.count, name)
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(fast, expected), 1e-5, name)
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(reference, expected), 1e-5, name)
        }
    }

    /// Row-banded im2col (bands of 1, 2, 3 rows and the whole image) gives the reference result.
    func testConvRowBandsAgreeWithReference() {
        var rng = VAETestRandom(seed: 11)
        let (cin, cout, h, w) = (3, 4, 10, 13)
        let x = (0..<cin * h * w).map { _ in rng.nextFloat() * 2 - 1 }
        for (k, p) in [(3, 1), (1, 0), (3, 2), (1, 1)] {
            let weight = (0..<cout * cin * k * k).map { _ in rng.nextFloat() - 0.5 }
            let bias = (0..<cout).map { _ in rng.nextFloat() }
            let reference = Conv2d.reference(x, height: h, width: w, weight: weight, bias: bias,
                                             inChannels: cin, outChannels: cout, kernelSize: k, padding: p)
            let ow = w + 2 * p - k + 1
            for lowered in [true, false] {  // im2col + sgemm, and the engine's 3×3 path where it runs
                let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: k,
                                  padding: p, lowered: lowered)
                for rows in [1, 2, 3, 1000] {
                    let budget = conv.engineWeights == nil ? rows * cin * k * k * ow : cin * (rows + 2) * (w + 2)
                    let y = conv.apply(x, height: h, width: w, scratchFloats: budget)
                    XCTAssertLessThanOrEqual(vaeMaxAbsDiff(y, reference), 1e-5, "k \(k) p \(p) band \(rows) lowered \(lowered)")
                }
            }
        }
    }

    /// Reading the input through a folded GroupNorm + SiLU or nearest ×2, in row bands of any size, and
    /// adding into an existing buffer equal the reference convolution of the materialised input.
    func testConvInputTransformsMatchMaterialisedInput() {
        var rng = VAETestRandom(seed: 12)
        let (cin, cout, h, w) = (4, 3, 6, 7)
        let x = (0..<cin * h * w).map { _ in rng.nextFloat() * 6 - 2 }
        let norm = GroupNorm(weight: (0..<cin).map { _ in rng.nextFloat() + 0.5 },
                             bias: (0..<cin).map { _ in rng.nextFloat() - 0.5 }, groups: 2, eps: 1e-6)
        var normalised = x
        norm(&normalised, spatial: h * w, silu: true)
        let folded = norm.channelAffine(x, spatial: h * w)
        let upsampled = VAEUpsample2D.nearest2x(x, channels: cin, height: h, width: w)
        for (k, p) in [(3, 1), (1, 0), (1, 2), (3, 0)] {
            let weight = (0..<cout * cin * k * k).map { _ in rng.nextFloat() - 0.5 }
            let bias = (0..<cout).map { _ in rng.nextFloat() }
            for lowered in [true, false] {
            let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: k, padding: p,
                              lowered: lowered)
            func reference(_ input: [Float], _ ih: Int, _ iw: Int) -> [Float] {
                Conv2d.reference(input, height: ih, width: iw, weight: weight, bias: bias,
                                 inChannels: cin, outChannels: cout, kernelSize: k, padding: p)
            }
            let expectNorm = reference(normalised, h, w)
            let expectUp = reference(upsampled, 2 * h, 2 * w)
            for band in [1, 2, 5, 1 << 20] {
                let budget = conv.engineWeights == nil ? band * cin * k * k * (2 * w + 2 * p - k + 1)
                    : min(band, 1 << 10) * cin * (2 * w + 2) + 2 * cin * (2 * w + 2)
                let y = conv.forward(x, height: h, width: w, input: .affine(scale: folded.scale, shift: folded.shift,
                                                                             silu: true), scratchFloats: budget)
                XCTAssertLessThanOrEqual(vaeMaxAbsDiff(y, expectNorm), 1e-5, "norm k \(k) p \(p) band \(band)")
                let u = conv.forward(x, height: h, width: w, input: .upsampled, scratchFloats: budget)
                XCTAssertLessThanOrEqual(vaeMaxAbsDiff(u, expectUp), 1e-5, "upsample k \(k) p \(p) band \(band)")
            }
            var sum = (0..<expectNorm.count).map { Float($0) * 0.25 }
            let start = sum
            conv.forward(x, height: h, width: w, input: .affine(scale: folded.scale, shift: folded.shift, silu: true),
                         addingTo: &sum)
            XCTAssertLessThanOrEqual(vaeMaxAbsDiff(sum, zip(start, expectNorm).map { $0 + $1 }), 1e-5, "add k \(k)")
            }
        }
    }

    /// Enough work to be split across cores (channel ranges read and lowered in parallel).
    func testLargeConvMatchesReference() {
        var rng = VAETestRandom(seed: 13)
        let (cin, cout, h, w) = (32, 8, 32, 36)
        let x = (0..<cin * h * w).map { _ in rng.nextFloat() * 2 - 1 }
        let weight = (0..<cout * cin * 9).map { _ in rng.nextFloat() - 0.5 }
        let bias = (0..<cout).map { _ in rng.nextFloat() }
        let conv = Conv2d(weight: weight, bias: bias, inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1)
        let expected = Conv2d.reference(x, height: h, width: w, weight: weight, bias: bias,
                                        inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(conv(x, height: h, width: w), expected), 1e-4)
        let upsampled = Conv2d.reference(VAEUpsample2D.nearest2x(x, channels: cin, height: h, width: w),
                                          height: 2 * h, width: 2 * w, weight: weight, bias: bias,
                                          inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(conv.forward(x, height: h, width: w, input: .upsampled), upsampled), 1e-4)
    }

    func testGroupNormMatchesTorch() throws {
        let ops = try convOps()
        let norm = GroupNorm(weight: try ops.vaeFloats("gn_w"), bias: try ops.vaeFloats("gn_b"), groups: 4, eps: 1e-6)
        var x = try ops.vaeFloats("gn_x")  // [16, 5, 6]
        let original = x
        norm(&x, spatial: 30)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(x, try ops.vaeFloats("gn_y")), 1e-5)
        let reference = GroupNorm.reference(original, spatial: 30, groups: 4, weight: norm.weight, bias: norm.bias,
                                            eps: 1e-6)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(reference, try ops.vaeFloats("gn_y")), 1e-5)
        x = original
        norm(&x, spatial: 30, silu: true)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(x, try ops.vaeFloats("gn_silu_y")), 1e-5)
    }

    /// Large enough to be split across cores; against the plain reference.
    func testGroupNormLargeInputMatchesReference() {
        var rng = VAETestRandom(seed: 21)
        let (channels, spatial) = (64, 48 * 40)
        let weight = (0..<channels).map { _ in rng.nextFloat() * 2 - 1 }
        let bias = (0..<channels).map { _ in rng.nextFloat() - 0.5 }
        let x = (0..<channels * spatial).map { _ in rng.nextFloat() * 10 - 3 }
        let norm = GroupNorm(weight: weight, bias: bias, groups: 32, eps: 1e-6)
        var y = x
        norm(&y, spatial: spatial)
        let expected = GroupNorm.reference(x, spatial: spatial, groups: 32, weight: weight, bias: bias, eps: 1e-6)
        XCTAssertLessThanOrEqual(vaeMaxAbsDiff(y, expected), 1e-5)
    }

    /// A constant group has zero variance: the result is the bias (eps keeps the division finite).
    func testGroupNormConstantGroup() {
        let norm = GroupNorm(weight: [2, 3], bias: [0.5, -1], groups: 1, eps: 1e-6)
        var x = [Float](repeating: 7, count: 8)
        norm(&x, spatial: 4)
        XCTAssertEqual(x, [0.5, 0.5, 0.5, 0.5, -1, -1, -1, -1])
    }

    func testNearestUpsampleMatchesTorch() throws {
        let ops = try convOps()
        let y = VAEUpsample2D.nearest2x(try ops.vaeFloats("conv_x"), channels: 5, height: 7, width: 9)
        XCTAssertEqual(y, try ops.vaeFloats("up_y"))
    }
}
