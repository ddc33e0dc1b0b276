import XCTest

@testable import PixconvImage

/// PSNR / SSIM / max difference against scikit-image values in fixtures/image/expected.json.
final class ImageMetricsTests: XCTestCase {
    private func metricImages() throws -> (a: [UInt8], b: [UInt8], width: Int, height: Int) {
        let a = try PNGImage.read(path: vaeImageFixture("a.png"))
        let b = try PNGImage.read(path: vaeImageFixture("b.png"))
        XCTAssertEqual(a.width, b.width)
        XCTAssertEqual(a.height, b.height)
        return (a.rgb, b.rgb, a.width, a.height)
    }

    func testPSNRMatchesScikitImage() throws {
        let (a, b, _, _) = try metricImages()
        let expected = try pngExpected()
        XCTAssertEqual(try ImageMetrics.psnr(a, b), expected.psnr_uint8, accuracy: 1e-9)
        let fa = a.map { Float($0) / 255 }, fb = b.map { Float($0) / 255 }
        XCTAssertEqual(try ImageMetrics.psnr(fa, fb), expected.psnr_float, accuracy: 1e-5)
        XCTAssertEqual(try ImageMetrics.psnr(a, a), .infinity)
        XCTAssertEqual(try ImageMetrics.psnr(fa, fa), .infinity)
        XCTAssertThrowsError(try ImageMetrics.psnr(a, Array(b.dropLast())))
    }

    func testSSIMMatchesScikitImage() throws {
        let (a, b, w, h) = try metricImages()
        let expected = try pngExpected()
        let perChannel = try ImageMetrics.ssimPerChannel(a, b, width: w, height: h)
        for c in 0..<3 { XCTAssertEqual(perChannel[c], expected.ssim_channels[c], accuracy: 1e-9, "channel \(c)") }
        let value = try ImageMetrics.ssim(a, b, width: w, height: h)
        print("ssim \(value) vs scikit-image \(expected.ssim)")
        XCTAssertEqual(value, expected.ssim, accuracy: 1e-9)
        XCTAssertEqual(try ImageMetrics.ssim(a, a, width: w, height: h), 1, accuracy: 1e-12)
        XCTAssertThrowsError(try ImageMetrics.ssim([UInt8](repeating: 0, count: 10 * 20 * 3),
                                                   [UInt8](repeating: 0, count: 10 * 20 * 3), width: 20, height: 10))
        XCTAssertThrowsError(try ImageMetrics.ssim(a, b, width: w + 1, height: h))
    }

    func testMaxDifferenceAndHeatmap() throws {
        let (a, b, w, h) = try metricImages()
        let expected = try pngExpected()
        XCTAssertEqual(try ImageMetrics.maxAbsDifference(a, b), expected.max_abs_diff)
        XCTAssertEqual(try ImageMetrics.maxAbsDifference(a, a), 0)

        XCTAssertEqual(try ImageDiff.heatmap(a, a, width: w, height: h), [UInt8](repeating: 0, count: w * h * 3))
        let map = try ImageDiff.heatmap(a, b, width: w, height: h)
        XCTAssertEqual(map.count, w * h * 3)
        for p in 0..<w * h {
            let diff = (0..<3).map { abs(Int(a[3 * p + $0]) - Int(b[3 * p + $0])) }.max()!
            let pixel = Array(map[3 * p..<3 * p + 3])
            if diff == 0 { XCTAssertEqual(pixel, [0, 0, 0]) }
            if diff == expected.max_abs_diff { XCTAssertEqual(pixel, [255, 255, 255]) }
            if diff > 0 { XCTAssertGreaterThan(pixel[0], 0, "pixel \(p)") }
        }
        // The map is a valid PNG image.
        let png = try PNGImage.encode(rgb: map, width: w, height: h)
        XCTAssertEqual(try PNGImage.decode(png).rgb, map)
    }

    /// scipy's reflect mode and its normalised Gaussian kernel.
    func testGaussianKernelAndReflect() {
        let k = ImageMetrics.gaussianKernel(sigma: 1.5, radius: 5)
        XCTAssertEqual(k.count, 11)
        XCTAssertEqual(k.reduce(0, +), 1, accuracy: 1e-15)
        XCTAssertEqual(k[5] / k[4], exp(0.5 / 2.25), accuracy: 1e-12)
        XCTAssertEqual((-3..<7).map { ImageMetrics.reflect($0, 4) }, [2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    }
}
