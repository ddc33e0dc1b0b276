import XCTest
import PixconvCore
@testable import PixconvQuant

/// Optimised loops against their plain reference versions on many random blocks, and the
/// streaming tensor encoder against the gguf-py vectors.
final class QuantReferenceTests: XCTestCase {
    /// Deterministic xorshift generator (no Foundation randomness, so runs are repeatable).
    private struct QRRandom {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        /// Floats of all magnitudes: random bit patterns (finite only), or scaled uniform values.
        mutating func float() -> Float {
            let r = next()
            if r % 4 == 0 {
                var f = Float(bitPattern: UInt32(truncatingIfNeeded: r >> 16))
                while !f.isFinite { f = Float(bitPattern: UInt32(truncatingIfNeeded: next() >> 16)) }
                return f
            }
            let u = Float(r >> 40) / Float(1 << 24) * 2 - 1
            let scales: [Float] = [1e-6, 1e-3, 0.05, 1, 7.5, 300, 7e4, 1e6]
            return u * scales[Int((r >> 8) % UInt64(scales.count))]
        }
    }

    private func randomValues(_ n: Int, seed: UInt64) -> [Float] {
        var rng = QRRandom(state: seed)
        var out = (0..<n).map { _ in rng.float() }
        // Exact ties after scaling: a block with max 127 and x.5 values, and one of repeated values.
        for j in 0..<32 { out[j] = j == 0 ? 127 : Float(Int(rng.next() % 200) - 100) + 0.5 }
        for j in 32..<64 { out[j] = -2.25 }
        return out
    }

    func testHalfEncodersAgreeWithReferences() {
        let values = randomValues(32 * 512, seed: 0x9E37_79B9_7F4A_7C15)
        let f16 = (try? Quantizer.encode(values, rowLength: 32, to: .F16)) ?? []
        let f16Ref = HalfPrecision.encodeF16Reference(values)
        XCTAssertTrue(f16 == f16Ref, qvFirstDifference(f16, f16Ref))
        let bf16 = (try? Quantizer.encode(values, rowLength: 32, to: .BF16)) ?? []
        let bf16Ref = HalfPrecision.encodeBF16Reference(values)
        XCTAssertTrue(bf16 == bf16Ref, qvFirstDifference(bf16, bf16Ref))
        // Every f16 bit pattern widened to f32 comes back unchanged (NaNs quiet, payload kept).
        for h in 0...UInt16.max where (h & 0x7C00) != 0x7C00 || (h & 0x3FF) == 0 || (h & 0x200) != 0 {
            XCTAssertEqual(HalfPrecision.f16Bits(halfBitsToFloat(h)), h, "f16 \(h)")
        }
    }

    func testBlockEncodersAgreeWithReferences() {
        let values = randomValues(32 * 2048, seed: 42)
        let q8 = (try? Quantizer.encode(values, rowLength: 256, to: .Q8_0)) ?? []
        let q8Ref = Q8_0Codec.encodeReference(values)
        XCTAssertTrue(q8 == q8Ref, qvFirstDifference(q8, q8Ref))
        let q4 = (try? Quantizer.encode(values, rowLength: 256, to: .Q4_0)) ?? []
        let q4Ref = Q4_0Codec.encodeReference(values)
        XCTAssertTrue(q4 == q4Ref, qvFirstDifference(q4, q4Ref))
    }

    func testBlockDecodersAgreeWithReferences() throws {
        var rng = QRRandom(state: 7)
        for dtype in [DType.Q8_0, .Q4_0, .Q4_1, .Q5_0, .Q5_1] {
            let blocks = 300
            var bytes = (0..<blocks * dtype.blockBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Keep the f16 scale fields finite so that every element compares.
            for b in 0..<blocks {
                bytes[b * dtype.blockBytes + 1] &= 0x3B
                if dtype == .Q4_1 || dtype == .Q5_1 { bytes[b * dtype.blockBytes + 3] &= 0xBB }
            }
            let info = TensorInfo(name: "r", dtype: dtype, shape: [blocks * 32], byteCount: bytes.count)
            let fast = try dequantizeToFloat(TensorData(info: info, copying: bytes))
            let ref: [Float]
            switch dtype {
            case .Q8_0: ref = Q8_0Codec.decodeReference(bytes)
            case .Q4_0: ref = Q4_0Codec.decodeReference(bytes)
            default: ref = LegacyBlockDecoder.decodeReference(bytes, dtype: dtype)
            }
            XCTAssertTrue(qvBits(fast) == qvBits(ref), dtype.rawValue)
        }
    }

    func testQuantizeThenDequantizeErrorIsBounded() throws {
        let values: [Float] = (0..<32 * 64).map { (i: Int) -> Float in
            let u = Float((i * 37) % 101) / 101 - 0.5
            return u * Float(1 + i % 5)
        }
        for (dtype, steps) in [(DType.Q8_0, Float(127)), (.Q4_0, Float(8))] {
            let bytes = try Quantizer.encode(values, rowLength: 64, to: dtype)
            let info = TensorInfo(name: "q", dtype: dtype, shape: [32, 64], byteCount: bytes.count)
            let back = try dequantizeToFloat(TensorData(info: info, copying: bytes))
            for b in 0..<values.count / 32 {
                let block = values[b * 32..<(b + 1) * 32]
                let amax = block.map(abs).max() ?? 0
                for j in block.indices {
                    XCTAssertLessThanOrEqual(abs(back[j] - values[j]), amax / steps * 1.01, "\(dtype) \(j)")
                }
            }
        }
    }

    func testStreamingEncoderMatchesVectorsAcrossChunks() throws {
        let c = try XCTUnwrap(QuantVectors.shared.cases.first { $0.name == "random_normal" })
        var f32 = [UInt8]()
        for x in c.input { withUnsafeBytes(of: x.bitPattern.littleEndian) { f32 += $0 } }
        let info = TensorInfo(name: "random", dtype: .F32, shape: [c.rows, c.cols], byteCount: f32.count)
        let data = TensorData(info: info, copying: f32)
        for dtype in [DType.F16, .BF16, .Q8_0, .Q4_0] {
            for chunk in [1, 64, 100, 1 << 20] {
                var out: [UInt8] = []
                var calls = 0
                try TensorEncoder.stream(data, to: dtype, chunkElements: chunk) { out += $0; calls += 1 }
                XCTAssertEqual(out, c.encoded[dtype.rawValue], "\(dtype) chunk \(chunk)")
                XCTAssertEqual(calls, chunk >= c.rows * c.cols ? 1 : c.rows / max(1, chunk / c.cols), "\(dtype) chunk \(chunk)")
            }
        }
        // F32 passes through untouched; f16 source re-encoded to Q8_0 goes through f32.
        XCTAssertEqual(try TensorEncoder.encode(data, to: .F32), f32)
        let f16 = try XCTUnwrap(c.encoded["F16"])
        let halfData = TensorData(info: TensorInfo(name: "h", dtype: .F16, shape: [c.rows, c.cols], byteCount: f16.count), copying: f16)
        let viaHalf = try TensorEncoder.encode(halfData, to: .Q8_0)
        XCTAssertEqual(viaHalf, try Quantizer.encode(c.decoded["F16"] ?? [], rowLength: c.cols, to: .Q8_0))
    }

    func testStreamingEncoderReportsOverflowWithTensorIndices() throws {
        var values = [Float](repeating: 0.5, count: 4 * 32)
        values[70] = 1e6
        values[100] = -7e4
        var bytes = [UInt8]()
        for x in values { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 } }
        let data = TensorData(info: TensorInfo(name: "o", dtype: .F32, shape: [4, 32], byteCount: bytes.count), copying: bytes)
        let report = try TensorEncoder.stream(data, to: .F16, chunkElements: 32) { _ in }
        XCTAssertEqual(report, RangeOverflow(count: 2, firstIndex: 70, firstValue: 1e6))
        XCTAssertNil(try TensorEncoder.stream(data, to: .Q8_0, chunkElements: 32) { _ in })
        XCTAssertEqual(try TensorEncoder.stream(data, to: .Q4_0) { _ in }?.count, 32)  // 1e6/8 > 65504
    }
}

/// The vectorizable f16 / bf16 decoders against the scalar conversions of PixconvCore, for every
/// 16-bit pattern.
final class HalfDecodeTests: XCTestCase {
    func testDecodersMatchScalarConversionsForAllPatterns() {
        let patterns = (0...UInt16.max).map { $0 }
        var bytes = [UInt8]()
        bytes.reserveCapacity(patterns.count * 2)
        for h in patterns { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        var f16 = [Float](repeating: 0, count: patterns.count)
        var bf16 = [Float](repeating: 0, count: patterns.count)
        bytes.withUnsafeBytes { src in
            f16.withUnsafeMutableBufferPointer { HalfPrecision.decodeF16(src, count: patterns.count, into: $0) }
            bf16.withUnsafeMutableBufferPointer { HalfPrecision.decodeBF16(src, count: patterns.count, into: $0) }
        }
        XCTAssertTrue(f16.map(\.bitPattern) == patterns.map { halfBitsToFloat($0).bitPattern })
        XCTAssertTrue(bf16.map(\.bitPattern) == patterns.map { bfloat16BitsToFloat($0).bitPattern })
        // Independent of PixconvCore for the non-NaN patterns: Swift's own Float16 → Float.
        for h in patterns where !Float16(bitPattern: h).isNaN {
            XCTAssertEqual(f16[Int(h)].bitPattern, Float(Float16(bitPattern: h)).bitPattern, "f16 \(h)")
        }
    }
}
