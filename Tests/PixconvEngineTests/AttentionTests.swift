import CEngine
import XCTest
@testable import PixconvEngine

/// Fused attention (online softmax over key blocks of 512, query blocks of 128) against the plain
/// double-precision reference, on PixArt's and T5's head dims and awkward lengths.
final class AttentionTests: XCTestCase {
    func testFusedMatchesReference() {
        let cases: [(b: Int, nq: Int, nk: Int, h: Int, d: Int)] = [
            (2, 37, 11, 3, 8), (1, 1, 1, 1, 72), (2, 130, 120, 2, 72), (1, 300, 1100, 1, 64), (1, 129, 513, 2, 64),
        ]
        var seed: UInt64 = 20
        for c in cases {
            seed += 4
            let w = c.h * c.d
            let q = LinearTests.randoms(c.b * c.nq * w, seed: seed, scale: 3)
            let k = LinearTests.randoms(c.b * c.nk * w, seed: seed + 1, scale: 3)
            let v = LinearTests.randoms(c.b * c.nk * w, seed: seed + 2)
            var keyBias = [Float](repeating: 0, count: c.b * c.nk)
            for j in 0..<(c.b * c.nk) where j % 7 == 3 { keyBias[j] = -10000 }  // PixArt's caption mask
            for kb in [nil, keyBias] {
                let fast = Attention.attention(q: q, k: k, v: v, batch: c.b, queries: c.nq, keys: c.nk, heads: c.h,
                                               headDim: c.d, keyBias: kb)
                let ref = Attention.attentionReference(q: q, k: k, v: v, batch: c.b, queries: c.nq, keys: c.nk, heads: c.h,
                                                       headDim: c.d, keyBias: kb)
                let worst = zip(fast, ref).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 2e-5, "\(c) key bias \(kb != nil)")
            }
        }
    }

    /// The bf16 path: q, k, p, v rounded to bf16 (8 significant bits), sums in f32.
    func testBF16PathMatchesReference() throws {
        guard Attention.runsBF16(headDim: 72) else {
            throw XCTSkip("attention bf16: this CPU lacks AVX512_BF16 (\(Engine.cpuFeatures)); the f32 path runs instead")
        }
        let cases: [(b: Int, nq: Int, nk: Int, h: Int, d: Int)] = [(2, 130, 120, 2, 72), (1, 257, 1030, 1, 64), (1, 5, 3, 3, 72)]
        for c in cases {
            let w = c.h * c.d
            let q = LinearTests.randoms(c.b * c.nq * w, seed: 40, scale: 2)
            let k = LinearTests.randoms(c.b * c.nk * w, seed: 41, scale: 2)
            let v = LinearTests.randoms(c.b * c.nk * w, seed: 42)
            var keyBias = [Float](repeating: 0, count: c.b * c.nk)
            for j in 0..<(c.b * c.nk) where j % 5 == 1 { keyBias[j] = -10000 }
            var out = [Float](repeating: 0, count: c.b * c.nq * w)
            q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                keyBias.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { op in
                    Attention.fused(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!,
                                    batch: c.b, queries: c.nq, keys: c.nk, heads: c.h, headDim: c.d,
                                    scale: Float(1 / Double(c.d).squareRoot()), keyBias: bp.baseAddress, bias: nil, bf16: true)
                } }
            } } }
            let ref = Attention.attentionReference(q: q, k: k, v: v, batch: c.b, queries: c.nq, keys: c.nk, heads: c.h,
                                                   headDim: c.d, keyBias: keyBias)
            let worst = zip(out, ref).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 2e-2, "\(c)")
            XCTAssertGreaterThan(worst, 0, "\(c): bf16 rounding should show")
        }
    }

    /// T5's form: scale 1, a per-head (H, L, L) bias with −FLT_MAX where masked; strided rows.
    func testHeadBiasAndStrides() {
        let (l, h, d) = (45, 3, 64)
        let w = h * d, ld = w + 8
        let q = LinearTests.randoms(l * ld, seed: 3, scale: 0.5), k = LinearTests.randoms(l * ld, seed: 4, scale: 0.5)
        let v = LinearTests.randoms(l * ld, seed: 5)
        var bias = LinearTests.randoms(h * l * l, seed: 6)
        for hh in 0..<h { for i in 0..<l { for j in 40..<l { bias[(hh * l + i) * l + j] = -Float.greatestFiniteMagnitude } } }
        var out = [Float](repeating: .nan, count: l * ld), ref = [Float](repeating: .nan, count: l * ld)
        let args = pe_attention_args(batch: 1, heads: Int64(h), nq: Int64(l), nk: Int64(l), d: Int64(d),
                                     ldq: Int64(ld), ldk: Int64(ld), ldv: Int64(ld), ldo: Int64(ld),
                                     q_bstride: 0, k_bstride: 0, v_bstride: 0, o_bstride: 0, scale: 1, key_bias: nil, bias: nil, bf16: 0)
        bias.withUnsafeBufferPointer { bp in
            var a = args
            a.bias = bp.baseAddress
            pe_attention(q, k, v, &out, a)
            pe_attention_ref(q, k, v, &ref, a)
        }
        for i in 0..<l {
            for c in 0..<w { XCTAssertEqual(out[i * ld + c], ref[i * ld + c], accuracy: 2e-5) }
            for c in w..<ld { XCTAssertTrue(out[i * ld + c].isNaN, "padding columns are not written") }
        }
    }
}
