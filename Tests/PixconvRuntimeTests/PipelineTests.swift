import Foundation
import PixconvCore
import PixconvReaders
import XCTest
@testable import PixconvRuntime

/// Whole-pipeline parity with diffusers: every case of the committed reference bundles
/// (made by scripts/make_fixtures.py with diffusers' PixArtAlphaPipeline, float32, CPU).
final class PipelineTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The PSNR every f32 image must reach against diffusers' (issue: ≥ 40 dB).
    static let minimumPSNR = 40.0

    private func pipelinePSNR(_ r: [Float], _ g: [Float]) -> Double {
        var mse = 0.0
        for i in r.indices {
            let d = Double(r[i]) - Double(g[i])
            mse += d * d
        }
        mse /= Double(r.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    private func runBundle(_ bundle: String, model: String) throws {
        let folder = Self.root + "/fixtures/" + bundle
        let reference = try ReferenceBundle(folder: folder)
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: [Self.root + "/fixtures/" + model]))
        for c in reference.cases {
            let images = try pipeline.generate(c.request)
            XCTAssertEqual(images.count, 1)
            let image = try XCTUnwrap(images.first)
            XCTAssertEqual([image.height, image.width], [c.height, c.width], c.name)
            let expected = try SafetensorsFile(path: folder + "/" + c.name + ".safetensors")
            let want = try dequantizeForTest(expected.data(for: "image"))
            XCTAssertEqual(want.count, image.pixels.count, c.name)
            let psnr = pipelinePSNR(want, image.pixels)
            print("pipeline \(bundle)/\(c.name): PSNR \(psnr) dB")
            XCTAssertGreaterThanOrEqual(psnr, Self.minimumPSNR, "\(bundle)/\(c.name)")
        }
    }

    private func dequantizeForTest(_ data: TensorData) throws -> [Float] {
        XCTAssertEqual(data.info.dtype, .F32)
        return (0..<data.info.elementCount).map { Float(bitPattern: data.bytes.readLE($0 * 4, as: UInt32.self)) }
    }

    func testReference512ImagesMatchDiffusers() throws {
        try runBundle("reference-512", model: "tiny-pixart-512")
    }

    func testReference1024MSImagesMatchDiffusers() throws {
        try runBundle("reference-1024ms", model: "tiny-pixart-1024ms")
    }
}
