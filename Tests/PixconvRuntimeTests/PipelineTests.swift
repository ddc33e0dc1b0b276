import Foundation
import PixconvCore
import PixconvImage
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
            let psnr = try ImageMetrics.psnr(want, image.pixels)
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

    // PixArt-Σ (diffusers' PixArtSigmaPipeline, scripts/make_sigma_reference.py): 300 text tokens
    // (prompts of 220 and 330 tokens), no micro-conditions, the SDXL VAE's scaling, bins.

    func testSigma512ImagesMatchDiffusers() throws {
        try runBundle("reference-sigma-512", model: "tiny-pixart-sigma-512")
    }

    func testSigma1024BinnedImagesMatchDiffusers() throws {
        try runBundle("reference-sigma-1024", model: "tiny-pixart-sigma-1024")
    }

    func testSigma2KImagesMatchDiffusers() throws {
        try runBundle("reference-sigma-2k", model: "tiny-pixart-sigma-2k")
    }

    /// The family comes from model_index.json and sets the text length; 120 tokens (α's) on the
    /// 220-token prompt gives another image.
    func testSigmaFamilyAndTextLength() throws {
        let components = try PipelineComponents.load(paths: [Self.root + "/fixtures/tiny-pixart-sigma-512"])
        XCTAssertEqual(components.family.family, .sigma)
        XCTAssertEqual(components.family.family.defaults.textLength, 300)
        let alpha = try PipelineComponents.load(paths: [Self.root + "/fixtures/tiny-pixart-512"])
        XCTAssertEqual(alpha.family.family, .alpha)
        let folder = Self.root + "/fixtures/reference-sigma-512"
        let c = try XCTUnwrap(try ReferenceBundle(folder: folder).cases.first { $0.name == "long-prompt-dpm" })
        var request = c.request
        request.steps = 2
        let pipeline = try PixArtPipeline(components: components)
        let full = try pipeline.generate(request)[0].pixels
        request.maxSequenceLength = 120
        let short = try pipeline.generate(request)[0].pixels
        XCTAssertLessThan(try ImageMetrics.psnr(full, short), 60, "120 tokens must change a 220-token prompt's image")
    }
}
