import Foundation
import XCTest
import PixconvCore
@testable import PixconvQuant

/// The C kernels (`Sources/CKernels`, both the AVX2/F16C path and the portable one) against the
/// Swift references they replace, on special values, random data and the gguf-py golden vectors.
final class FastKernelTests: XCTestCase {
    /// Deterministic values: a spread of magnitudes and signs, plus the special cases.
    private func fkValues(_ n: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        var out: [Float] = []
        for i in 0..<n {
            let r = next()
            switch i % 7 {
            case 0: out.append(Float(bitPattern: UInt32(truncatingIfNeeded: r)))  // any bit pattern
            case 1: out.append(Float(Int64(r % 2_000_001) - 1_000_000) / 4096)      // many exact halves
            default: out.append((Float(r % 1_000_000) / 500_000 - 1) * pow(2, Float(Int(r % 40) - 20)))
            }
        }
        return out
    }

    private let fkSpecials: [Float] = [
        0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFBF_FFFF),
        Float(bitPattern: 0x7FC0_2000), 65504, 65519.996, 65520, -65520, 1e30, .greatestFiniteMagnitude,
        Float(bitPattern: 0x3880_0000), Float(bitPattern: 0x387F_FFFF), 5.960464477539063e-08, 2.9802322e-08,
        2.9802326e-08, 8.940697e-08, .leastNonzeroMagnitude, -.leastNormalMagnitude, 0.5, 1.5, 2.5, -2.5,
    ]

    private func fkBytes(_ values: [Float], offset: Int = 0) -> [UInt8] {
        var b = [UInt8](repeating: 0xAB, count: offset)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b += $0 } }
        return b
    }

    func testF32ToF16MatchesSwiftAtEveryPathAndAlignment() {
        let values = fkSpecials + fkValues(20_003, seed: 1)
        let expected = values.map { HalfPrecision.f16Bits($0) }
        XCTAssertEqual(expected.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }, HalfPrecision.encodeF16Reference(values),
                       "Swift encoder and its Float16 reference disagree")
        let overflow = Quantizer.overflow(values, to: .F16)?.count ?? 0
        XCTAssertGreaterThan(overflow, 0)
        for portable in [false, true] {
            for offset in [0, 1, 2] {
                let src = fkBytes(values, offset: offset)
                var dst = [UInt8](repeating: 0, count: values.count * 2 + 1)
                let n = src.withUnsafeBytes { s in
                    dst.withUnsafeMutableBytes { d in
                        FastKernels.f32ToF16(s.baseAddress! + offset, d.baseAddress! + 1, count: values.count, portable: portable)
                    }
                }
                XCTAssertEqual(n, overflow, "overflow count, portable \(portable)")
                let got = (0..<values.count).map { UInt16(dst[1 + 2 * $0]) | UInt16(dst[2 + 2 * $0]) << 8 }
                let bad = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }
                XCTAssertNil(bad, "portable \(portable), offset \(offset): value \(bad.map { values[$0.offset] } ?? 0)")
            }
        }
    }

    func testF32ToF16SweepOfBitPatterns() {
        // Every 4099th f32 bit pattern (about a million, all exponents and both signs).
        let values = stride(from: UInt64(0), to: 1 << 32, by: 4099).map { Float(bitPattern: UInt32($0)) }
        let src = fkBytes(values)
        for portable in [false, true] {
            var dst = [UInt16](repeating: 0, count: values.count)
            src.withUnsafeBytes { s in
                dst.withUnsafeMutableBytes { d in
                    _ = FastKernels.f32ToF16(s.baseAddress!, d.baseAddress!, count: values.count, portable: portable)
                }
            }
            let i = values.indices.first { dst[$0] != HalfPrecision.f16Bits(values[$0]) }
            XCTAssertNil(i, "portable \(portable): bits \(i.map { String(values[$0].bitPattern, radix: 16) } ?? "")")
        }
    }

    func testF16ToF32MatchesSwiftForAllPatterns() {
        let halves = (0...0xFFFF).map { UInt16($0) }
        var src: [UInt8] = [0x55]  // odd start: unaligned source
        for h in halves { src += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        let expected = halves.map { halfBitsToFloat($0).bitPattern }
        for portable in [false, true] {
            for count in [halves.count, 13] {  // 13: vector body plus a tail
                var dst = [Float](repeating: 1, count: count)
                src.withUnsafeBytes { s in
                    dst.withUnsafeMutableBufferPointer { FastKernels.f16ToF32(s.baseAddress! + 1, $0.baseAddress!, count: count, portable: portable) }
                }
                let i = (0..<count).first { dst[$0].bitPattern != expected[$0] }
                XCTAssertNil(i, "portable \(portable): half \(i.map { String(halves[$0], radix: 16) } ?? "")")
            }
        }
        // Through `dequantize`, which the runtime uses.
        let data = TensorData(info: TensorInfo(name: "h", dtype: .F16, shape: [halves.count], byteCount: halves.count * 2),
                              copying: Array(src.dropFirst()))
        XCTAssertEqual(try dequantizeToFloat(data).map(\.bitPattern), expected)
    }

    /// Blocks that hit every branch: NaN, inf, a scale whose inverse overflows, a scale too large for
    /// f16, zeros, exact halves after scaling (d = 1), and ordinary random blocks.
    private func fkQ8Blocks() -> [Float] {
        var v: [Float] = []
        func block(_ f: (Int) -> Float) { v += (0..<32).map(f) }
        block { $0 == 0 ? 127 : Float($0) - 15.5 }                  // id = 1: q = round(x) on halves
        block { $0 == 3 ? -127 : (Float($0) + 0.5) * ($0 % 2 == 0 ? 1 : -1) }
        block { _ in 0 }
        block { $0 == 5 ? .nan : Float($0) }
        block { $0 == 9 ? -.infinity : Float($0) }
        block { Float($0) * 1e-39 }                                 // subnormal d: 1/d = inf
        block { Float($0) * 4e36 }                                  // d overflows f16
        block { $0 == 31 ? 65520 * 127 : 1 }
        block { Float(bitPattern: 0x0000_0001 + UInt32($0)) }
        v += fkValues(32 * 300, seed: 7).map { $0.isFinite && abs($0) < 1e30 ? $0 : 0.25 }
        v += fkValues(32 * 50, seed: 9)                            // raw patterns, NaN and inf included
        return v
    }

    func testQ8_0MatchesSwiftAndReference() {
        let values = fkQ8Blocks()
        let reference = Q8_0Codec.encodeReference(values)
        var swift = [UInt8](repeating: 0, count: reference.count)
        values.withUnsafeBufferPointer { s in swift.withUnsafeMutableBytes { Q8_0Codec.encode(s, into: $0) } }
        XCTAssertEqual(swift, reference)
        var badBlocks = 0
        for b in 0..<values.count / 32 {
            let o = Quantizer.overflow(Array(values[b * 32..<(b + 1) * 32]), to: .Q8_0)
            let h = UInt16(reference[b * 34]) | UInt16(reference[b * 34 + 1]) << 8
            if h & 0x7C00 == 0x7C00 { badBlocks += 1 } else { XCTAssertNil(o) }
        }
        XCTAssertGreaterThan(badBlocks, 3)
        for portable in [false, true] {
            for offset in [0, 3] {
                let src = fkBytes(values, offset: offset)
                var dst = [UInt8](repeating: 0xEE, count: reference.count)
                let bad = src.withUnsafeBytes { s in
                    dst.withUnsafeMutableBytes { FastKernels.q8_0(s.baseAddress! + offset, $0.baseAddress!, blocks: values.count / 32, portable: portable) }
                }
                XCTAssertEqual(bad, badBlocks, "portable \(portable)")
                let block = (0..<values.count / 32).first { dst[$0 * 34..<($0 + 1) * 34] != reference[$0 * 34..<($0 + 1) * 34] }
                XCTAssertNil(block, "portable \(portable), offset \(offset): block \(block ?? -1)")
            }
        }
    }

    func testQ4_0MatchesSwiftAndReference() {
        var values = fkQ8Blocks()
        values += (0..<32).map { $0 == 3 ? -5 : ($0 == 7 ? 5 : Float($0 % 5) - 2) }  // tie: the first keeps its sign
        values += (0..<32).map { $0 == 0 ? Float.leastNonzeroMagnitude : 0 }     // d underflows to -0
        values += (0..<32).map { $0 == 30 ? 65520 * 8 : -1 }                      // d overflows f16
        let reference = Q4_0Codec.encodeReference(values)
        var swift = [UInt8](repeating: 0, count: reference.count)
        values.withUnsafeBufferPointer { s in swift.withUnsafeMutableBytes { Q4_0Codec.encode(s, into: $0) } }
        XCTAssertEqual(swift, reference)
        var badBlocks = 0
        for b in 0..<values.count / 32 {
            let h = UInt16(reference[b * 18]) | UInt16(reference[b * 18 + 1]) << 8
            if h & 0x7C00 == 0x7C00 { badBlocks += 1 } else { XCTAssertNil(Quantizer.overflow(Array(values[b * 32..<(b + 1) * 32]), to: .Q4_0)) }
        }
        XCTAssertGreaterThan(badBlocks, 3)
        for portable in [false, true] {
            for offset in [0, 3] {
                let src = fkBytes(values, offset: offset)
                var dst = [UInt8](repeating: 0xEE, count: reference.count)
                let bad = src.withUnsafeBytes { s in
                    dst.withUnsafeMutableBytes { FastKernels.q4_0(s.baseAddress! + offset, $0.baseAddress!, blocks: values.count / 32, portable: portable) }
                }
                XCTAssertEqual(bad, badBlocks, "portable \(portable)")
                let block = (0..<values.count / 32).first { dst[$0 * 18..<($0 + 1) * 18] != reference[$0 * 18..<($0 + 1) * 18] }
                XCTAssertNil(block, "portable \(portable), offset \(offset): block \(block ?? -1)")
            }
        }
    }

    func testPortableKernelsMatchGGUFPyVectors() throws {
        let vectors = QuantVectors.shared
        XCTAssertFalse(vectors.cases.isEmpty)
        for c in vectors.cases {
            let src = fkBytes(c.input)
            if let want = c.encoded["Q8_0"] {
                var got = [UInt8](repeating: 0, count: want.count)
                src.withUnsafeBytes { s in got.withUnsafeMutableBytes { _ = FastKernels.q8_0(s.baseAddress!, $0.baseAddress!, blocks: c.input.count / 32, portable: true) } }
                XCTAssertEqual(got, want, "\(c.name) Q8_0")
            }
            if let want = c.encoded["Q4_0"] {
                var got = [UInt8](repeating: 0, count: want.count)
                src.withUnsafeBytes { s in got.withUnsafeMutableBytes { _ = FastKernels.q4_0(s.baseAddress!, $0.baseAddress!, blocks: c.input.count / 32, portable: true) } }
                XCTAssertEqual(got, want, "\(c.name) Q4_0")
            }
            if let want = c.encoded["F16"] {
                var got = [UInt8](repeating: 0, count: want.count)
                src.withUnsafeBytes { s in got.withUnsafeMutableBytes { _ = FastKernels.f32ToF16(s.baseAddress!, $0.baseAddress!, count: c.input.count, portable: true) } }
                XCTAssertEqual(got, want, "\(c.name) F16")
            }
        }
    }

    func testRawF32EncodeMatchesTypedEncode() throws {
        let values = fkQ8Blocks()
        let src = fkBytes(values, offset: 1)
        for dtype in Quantizer.targets {
            let want = try Quantizer.encode(values, rowLength: 32, to: dtype)
            var got = [UInt8](repeating: 0, count: want.count)
            let may = try src.withUnsafeBytes { s in
                try got.withUnsafeMutableBytes {
                    try Quantizer.encode(f32Bytes: UnsafeRawBufferPointer(rebasing: s[1...]), count: values.count, rowLength: 32,
                                         to: dtype, into: $0)
                }
            }
            XCTAssertEqual(got, want, "\(dtype)")
            if dtype != .F32 { XCTAssertEqual(may, true, "\(dtype): these values overflow") }
        }
    }

    func testStreamingFromAMappingThatDropsItsPages() throws {
        let rows = 37, cols = 96
        let values = fkValues(rows * cols, seed: 3).map { $0.isFinite ? max(-60000, min(60000, $0)) : 1 }
        let path = NSTemporaryDirectory() + "pixconv-fk-\(getpid()).bin"
        defer { unlink(path) }
        let header = 40  // tensor bytes not page-aligned
        try Data([UInt8](repeating: 7, count: header) + fkBytes(values)).write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path: path)
        let info = TensorInfo(name: "t", dtype: .F32, shape: [rows, cols], byteCount: values.count * 4)
        let data = TensorData(info: info, owner: file, bytes: file.slice(header..<header + values.count * 4))
        for dtype in [DType.Q8_0, .F16, .BF16, .Q4_0, .F32] {
            let want = try Quantizer.encode(values, rowLength: cols, to: dtype)
            var got: [UInt8] = []
            let report = try TensorEncoder.stream(data, to: dtype, chunkElements: cols * 5, releaseInput: true) {
                got.append(contentsOf: $0)
            }
            XCTAssertEqual(got, want, "\(dtype)")
            XCTAssertNil(report, "\(dtype)")
        }
        // Dropped pages read back unchanged.
        XCTAssertEqual(try dequantizeToFloat(data).map(\.bitPattern), values.map(\.bitPattern))
    }
}
