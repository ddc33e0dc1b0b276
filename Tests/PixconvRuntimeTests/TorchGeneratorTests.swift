import Foundation
import PixconvCore
import PixconvReaders
import XCTest

@testable import PixconvRuntime

/// Path of a committed fixture, from the package root.
func ditFixturePath(_ relative: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures").appendingPathComponent(relative).path
}

/// A fixture file read through the project's safetensors reader, with f32 accessors.
struct DitSafetensors {
    let file: SafetensorsFile

    init(path: String) throws { file = try SafetensorsFile(path: path) }

    var tensors: [TensorInfo] { file.tensors }
    func info(for name: String) -> TensorInfo? { file.info(named: name) }
    /// The tensor `name` widened to float32.
    func floats(_ name: String) throws -> [Float] { try Weights(file).floats(name) }
    func shape(_ name: String) throws -> [Int] { try Weights(file).shape(name) }
}

/// Largest |a − b| and the largest distance in float32 ulps (bit-pattern distance).
func ditMaxDiff(_ a: [Float], _ b: [Float]) -> (abs: Float, ulps: Int) {
    precondition(a.count == b.count)
    var m: Float = 0
    var u = 0
    for (x, y) in zip(a, b) {
        m = max(m, abs(x - y))
        let ix = Int(Int32(bitPattern: x.bitPattern)), iy = Int(Int32(bitPattern: y.bitPattern))
        let ox = ix < 0 ? Int(Int32.min) - ix : ix, oy = iy < 0 ? Int(Int32.min) - iy : iy
        u = max(u, abs(ox - oy))
    }
    return (m, u)
}

final class TorchGeneratorTests: XCTestCase {
    func testMT19937MatchesReferenceSequence() {
        // std::mt19937 with the default seed 5489: the 10000th output is 4123659995 (C++ standard).
        var g = TorchGenerator(seed: 5489)
        var last: UInt32 = 0
        for _ in 0..<10000 { last = g.random() }
        XCTAssertEqual(last, 4_123_659_995)
    }

    func testRandnMatchesTorchForSeedsAndSizes() throws {
        let st = try DitSafetensors(path: ditFixturePath("dit/generator.safetensors"))
        var checked = 0
        for info in st.tensors where info.name.hasPrefix("randn_") {
            let parts = info.name.split(separator: "_")
            let seed = try XCTUnwrap(UInt64(parts[1])), n = try XCTUnwrap(Int(parts[2]))
            var g = TorchGenerator(seed: seed)
            let ours = g.randn(count: n)
            let expected = try st.floats(info.name)
            let d = ditMaxDiff(ours, expected)
            XCTAssertEqual(d.ulps, 0, "\(info.name): max diff \(d.abs), \(d.ulps) ulp")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 9)
    }

    func testSequentialDrawsShareTheGeneratorState() throws {
        let st = try DitSafetensors(path: ditFixturePath("dit/generator.safetensors"))
        var g = TorchGenerator(seed: 2024)
        let names = st.tensors.map(\.name).filter { $0.hasPrefix("seq_2024_") }.sorted()
        XCTAssertEqual(names.count, 6)
        for name in names {
            let n = try XCTUnwrap(Int(name.split(separator: "_")[3]))
            let d = ditMaxDiff(g.randn(count: n), try st.floats(name))
            XCTAssertEqual(d.ulps, 0, "\(name): max diff \(d.abs)")
        }
    }

    func testLatentShapedDraw() throws {
        let st = try DitSafetensors(path: ditFixturePath("dit/generator.safetensors"))
        var g = TorchGenerator(seed: 0)
        let d = ditMaxDiff(g.randn(count: 2 * 4 * 16 * 24), try st.floats("latents_0_2x4x16x24"))
        XCTAssertEqual(d.ulps, 0)
    }

    func testScalarKernelIsCloseToTorch() throws {
        // The portable (non-AVX) Box–Muller differs from x86 torch only in the last bits.
        let st = try DitSafetensors(path: ditFixturePath("dit/generator.safetensors"))
        var g = TorchGenerator(seed: 1234, kernel: .scalar)
        let d = ditMaxDiff(g.randn(count: 1024), try st.floats("randn_1234_1024"))
        XCTAssertLessThan(d.abs, 1e-5)
        XCTAssertGreaterThan(d.abs, 0)
    }

    func testCephesKernelsAgreeWithLibm() {
        for i in 1...1000 {
            let u = Float(i) / 1000
            XCTAssertEqual(TorchGenerator.cephesLog(u), Foundation.log(u), accuracy: 2e-7 * max(1, abs(Foundation.log(u))))
            let theta = Float(2 * Double.pi) * u
            let (s, c) = TorchGenerator.cephesSinCos(theta)
            XCTAssertEqual(s, Foundation.sin(theta), accuracy: 3e-7)
            XCTAssertEqual(c, Foundation.cos(theta), accuracy: 3e-7)
        }
    }
}
