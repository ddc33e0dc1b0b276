import CEngine
import Foundation
import XCTest
@testable import PixconvEngine

/// The pool and the elementwise passes against the plain Swift references (double precision).
final class KernelsTests: XCTestCase {
    private func random(_ n: Int, seed: UInt64) -> [Float] { LinearTests.randoms(n, seed: seed, scale: 10) }

    private func assertClose(_ a: [Float], _ b: [Float], _ tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, what, file: file, line: line)
    }

    func testElementwiseMatchReferences() {
        let rows = 257, dim = 1152
        let x = random(rows * dim, seed: 3)
        var a = x, b = x
        Kernels.layerNorm(&a, rows: rows, dim: dim, eps: 1e-6)
        b.withUnsafeMutableBufferPointer { KernelsReference.layerNorm($0.baseAddress!, rows: 0..<rows, dim: dim, eps: 1e-6) }
        assertClose(a, b, 2e-5, "layerNorm")
        a = x; b = x
        Kernels.softmax(&a, rows: rows, dim: dim)
        b.withUnsafeMutableBufferPointer { KernelsReference.softmax($0.baseAddress!, rows: 0..<rows, dim: dim) }
        assertClose(a, b, 2e-6, "softmax")
        for row in 0..<3 { XCTAssertEqual(a[(row * dim)..<((row + 1) * dim)].reduce(0, +), 1, accuracy: 1e-4) }
        a = x; b = x
        Kernels.geluTanh(&a)
        b.withUnsafeMutableBufferPointer { KernelsReference.geluTanh($0.baseAddress!, 0..<(rows * dim)) }
        assertClose(a, b, 2e-6, "gelu")
        a = x; b = x
        Kernels.silu(&a)
        b.withUnsafeMutableBufferPointer { KernelsReference.silu($0.baseAddress!, 0..<(rows * dim)) }
        assertClose(a, b, 2e-6, "silu")
        // Known values (PyTorch: F.gelu(x, approximate="tanh"), F.silu).
        var g: [Float] = [-3, -1, 0, 0.5, 2]
        Kernels.geluTanh(&g)
        let expected: [Float] = [-0.0036373436, -0.15880796, 0, 0.34571401, 1.9545977]
        for (u, v) in zip(g, expected) { XCTAssertEqual(u, v, accuracy: 1e-6) }
        // exp over its range, and its ends
        for t in stride(from: Float(-87), through: 88, by: 0.37) {
            XCTAssertEqual(Double(pe_expf(t)), Foundation.exp(Double(t)), accuracy: 3e-7 * Foundation.exp(Double(t)), "exp(\(t))")
        }
        XCTAssertEqual(pe_expf(-200), 0)
        XCTAssertEqual(pe_expf(-.infinity), 0)
    }

    /// LayerNorm + modulate, RMSNorm, gated add, against the formulas.
    func testFusedRowPasses() {
        let (batch, n, dim) = (2, 5, 72)
        let x = random(batch * n * dim, seed: 9)
        let shift = random(batch * 3 * dim, seed: 10), scale = random(batch * 3 * dim, seed: 11)
        var y = [Float](repeating: 0, count: x.count)
        pe_layernorm_modulate(x, &y, Int64(batch * n), Int64(dim), 1e-6, shift, scale, Int64(n), Int64(3 * dim))
        var ln = x
        ln.withUnsafeMutableBufferPointer { KernelsReference.layerNorm($0.baseAddress!, rows: 0..<(batch * n), dim: dim, eps: 1e-6) }
        var expected = ln
        for r in 0..<(batch * n) {
            let b = r / n
            for c in 0..<dim { expected[r * dim + c] = ln[r * dim + c] * (1 + scale[b * 3 * dim + c]) + shift[b * 3 * dim + c] }
        }
        assertClose(y, expected, 1e-4, "layernorm+modulate")

        let w = random(dim, seed: 12)
        pe_rmsnorm(x, &y, Int64(batch * n), Int64(dim), 1e-6, w)
        for r in 0..<(batch * n) {
            let row = x[(r * dim)..<((r + 1) * dim)].map(Double.init)
            let inv = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(dim) + 1e-6).squareRoot()
            for c in 0..<dim { XCTAssertEqual(Double(y[r * dim + c]), Double(w[c]) * row[c] * inv, accuracy: 1e-4 * max(1, abs(Double(y[r * dim + c])))) }
        }

        var acc = x
        let add = random(x.count, seed: 13)
        pe_gated_add(&acc, add, Int64(batch * n), Int64(dim), scale, Int64(n), Int64(3 * dim))
        for r in 0..<(batch * n) {
            for c in 0..<dim { XCTAssertEqual(acc[r * dim + c], scale[(r / n) * 3 * dim + c] * add[r * dim + c] + x[r * dim + c], accuracy: 1e-4) }
        }
    }

    /// Every part runs exactly once; a call from inside a task runs serially; one thread works.
    func testPoolRunsEveryPartOnce() {
        for threads in [1, 2, 5, 0] {
            Engine.setThreads(threads)
            var counts = [Int](repeating: 0, count: 1000)
            counts.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress!
                let box = UnsafeSendable(base)
                Kernels.parallelFor(100) { part in
                    Kernels.parallelFor(10) { inner in box.pointer[part * 10 + inner] += 1 }
                }
            }
            XCTAssertEqual(counts, [Int](repeating: 1, count: 1000), "threads \(threads)")
        }
        Engine.setThreads(0)
        XCTAssertEqual(Engine.threads, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Threaded sgemm (rows or columns split) equals the reference product.
    func testParallelGemm() {
        for (m, n, k) in [(300, 7, 33), (3, 500, 20), (65, 66, 67)] {
            let a = random(m * k, seed: 1), b = random(k * n, seed: 2)
            var c = [Float](repeating: 0, count: m * n)
            Kernels.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0, c: &c, ldc: n)
            var bt = [Float](repeating: 0, count: n * k)
            for i in 0..<k { for j in 0..<n { bt[j * k + i] = b[i * n + j] } }
            let ref = KernelsReference.linear(a, rows: m, inFeatures: k, weight: bt, outFeatures: n, bias: nil)
            assertClose(c, ref, 1e-4, "gemm \(m)×\(n)×\(k)")
        }
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {  // the parts write disjoint elements
    let pointer: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}

/// The activation rounding to int8 blocks: the AVX-512 version that pe_quantize_row_q8 runs
/// equals the plain loops byte for byte, including halfway cases and zero blocks.
final class QuantizeRowTests: XCTestCase {
    func testFastRoundingEqualsPlainLoops() throws {
        let K = 32 * 40
        var x = LinearTests.randoms(K, seed: 5, scale: 3)
        for b in 0..<8 { for j in 0..<32 { x[b * 32 + j] = Float(j - 16) * 0.5 + (j == 3 ? 127 : 0) } }  // ties after scaling
        for j in 0..<32 { x[8 * 32 + j] = 0 }  // a zero block
        for j in 0..<32 { x[9 * 32 + j] = Float(j % 3 - 1) * 1e-30 }  // tiny values
        var q1 = [Int8](repeating: 0, count: K), q2 = q1
        var d1 = [Float](repeating: 0, count: K / 32), d2 = d1
        pe_quantize_row_q8(x, Int64(K), &q1, &d1)
        pe_quantize_row_q8_ref(x, Int64(K), &q2, &d2)
        XCTAssertEqual(q1, q2)
        XCTAssertEqual(d1, d2)
        if pe_isa_supported(PE_ISA_F32_512) == 0 { print("QuantizeRowTests: no AVX-512 here; both calls ran the plain loops") }
    }
}
