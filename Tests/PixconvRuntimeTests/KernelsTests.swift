import Foundation
import XCTest
@testable import PixconvRuntime

/// The parallel elementwise kernels against their plain single-threaded references.
final class KernelsTests: XCTestCase {
    private func random(_ n: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 20_000) / 1000 - 10
        }
    }

    func testParallelKernelsEqualReferences() {
        let rows = 257, dim = 1152
        let x = random(rows * dim, seed: 3)
        var a = x, b = x
        Kernels.layerNorm(&a, rows: rows, dim: dim, eps: 1e-6)
        b.withUnsafeMutableBufferPointer { KernelsReference.layerNorm($0.baseAddress!, rows: 0..<rows, dim: dim, eps: 1e-6) }
        XCTAssertEqual(a, b)
        a = x; b = x
        Kernels.softmax(&a, rows: rows, dim: dim)
        b.withUnsafeMutableBufferPointer { KernelsReference.softmax($0.baseAddress!, rows: 0..<rows, dim: dim) }
        XCTAssertEqual(a, b)
        for row in 0..<3 { XCTAssertEqual(a[(row * dim)..<((row + 1) * dim)].reduce(0, +), 1, accuracy: 1e-4) }
        a = x; b = x
        Kernels.geluTanh(&a)
        b.withUnsafeMutableBufferPointer { KernelsReference.geluTanh($0.baseAddress!, 0..<(rows * dim)) }
        XCTAssertEqual(a, b)
        a = x; b = x
        Kernels.silu(&a)
        b.withUnsafeMutableBufferPointer { KernelsReference.silu($0.baseAddress!, 0..<(rows * dim)) }
        XCTAssertEqual(a, b)
        // Known values (PyTorch: F.gelu(x, approximate="tanh"), F.silu).
        var g: [Float] = [-3, -1, 0, 0.5, 2]
        Kernels.geluTanh(&g)
        let expected: [Float] = [-0.0036373436, -0.15880796, 0, 0.34571401, 1.9545977]
        for (u, v) in zip(g, expected) { XCTAssertEqual(u, v, accuracy: 1e-6) }
    }
}
