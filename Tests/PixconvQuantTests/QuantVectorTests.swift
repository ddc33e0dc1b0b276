import Foundation
import XCTest
import PixconvCore
@testable import PixconvQuant

/// Golden vectors from gguf-py 0.19.0 (`scripts/make_quant_vectors.py` → fixtures/quant/).
struct QuantVectors {
    struct Case {
        var name: String
        var rows: Int
        var cols: Int
        var input: [Float]
        var encoded: [String: [UInt8]]  // "F16", "BF16", "Q8_0", "Q4_0"
        var decoded: [String: [Float]]
    }
    struct Block {
        var name: String
        var dtype: DType
        var rows: Int
        var cols: Int
        var bytes: [UInt8]
        var decoded: [Float]
    }
    var cases: [Case] = []
    var blocks: [Block] = []

    static let shared: QuantVectors = {
        do { return try QuantVectors.load() } catch {
            XCTFail("cannot load quant vectors: \(error)")
            return QuantVectors()
        }
    }()

    private static func load() throws -> QuantVectors {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/quant")
        let blob = [UInt8](try Data(contentsOf: root.appendingPathComponent("vectors.bin")))
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("vectors.json")))
        guard let top = index as? [String: Any], let cases = top["cases"] as? [[String: Any]],
              let blocks = top["dequant_only"] as? [[String: Any]] else { throw CocoaError(.fileReadCorruptFile) }
        func bytes(_ v: Any?) throws -> [UInt8] {
            guard let r = v as? [Int], r.count == 2, r[0] >= 0, r[0] + r[1] <= blob.count else {
                throw CocoaError(.fileReadCorruptFile)
            }
            return Array(blob[r[0]..<r[0] + r[1]])
        }
        func floats(_ v: Any?) throws -> [Float] {
            let b = try bytes(v)
            return stride(from: 0, to: b.count, by: 4).map { i in
                Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            }
        }
        var out = QuantVectors()
        for c in cases {
            var entry = Case(name: c["name"] as? String ?? "?", rows: c["rows"] as? Int ?? 0, cols: c["cols"] as? Int ?? 0,
                             input: try floats(c["input"]), encoded: [:], decoded: [:])
            for t in ["F16", "BF16", "Q8_0", "Q4_0"] where c[t] != nil {
                entry.encoded[t] = try bytes(c[t])
                entry.decoded[t] = try floats(c[t + "_dequant"])
            }
            out.cases.append(entry)
        }
        for b in blocks {
            guard let t = b["type"] as? String, let dtype = DType(rawValue: t) else { throw CocoaError(.fileReadCorruptFile) }
            out.blocks.append(Block(name: b["name"] as? String ?? "?", dtype: dtype, rows: b["rows"] as? Int ?? 0,
                                    cols: b["cols"] as? Int ?? 0, bytes: try bytes(b["bytes"]), decoded: try floats(b["dequant"])))
        }
        return out
    }
}

/// Bit patterns, so that NaN compares equal to the same NaN and −0 differs from +0.
func qvBits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

func qvFirstDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
    guard a.count == b.count else { return "sizes \(a.count) vs \(b.count)" }
    guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else { return "equal" }
    return "first difference at byte \(i): \(a[i]) vs \(b[i])"
}

final class QuantVectorTests: XCTestCase {
    let vectors = QuantVectors.shared

    func testFixturesLoaded() {
        XCTAssertGreaterThanOrEqual(vectors.cases.count, 9)
        XCTAssertEqual(Set(vectors.blocks.map(\.dtype)), [.Q4_1, .Q5_0, .Q5_1, .Q8_0, .Q4_0])
        XCTAssertTrue(vectors.cases.contains { $0.encoded["Q8_0"] != nil && $0.name == "ties_q8" })
    }

    func testEncodersMatchGGUFPyByteForByte() throws {
        for c in vectors.cases {
            for (name, expected) in c.encoded.sorted(by: { $0.key < $1.key }) {
                let dtype = try XCTUnwrap(DType(rawValue: name))
                let got = try Quantizer.encode(c.input, rowLength: c.cols, to: dtype, tensor: c.name)
                XCTAssertTrue(got == expected, "\(c.name) \(name): \(qvFirstDifference(got, expected))")
            }
        }
    }

    func testReferenceEncodersMatchGGUFPy() {
        for c in vectors.cases {
            let refs: [(String, [UInt8])] = [
                ("F16", HalfPrecision.encodeF16Reference(c.input)),
                ("BF16", HalfPrecision.encodeBF16Reference(c.input)),
                ("Q8_0", Q8_0Codec.encodeReference(c.input)),
                ("Q4_0", Q4_0Codec.encodeReference(c.input)),
            ]
            for (name, got) in refs {
                guard let expected = c.encoded[name] else { continue }
                XCTAssertTrue(got == expected, "\(c.name) \(name) reference: \(qvFirstDifference(got, expected))")
            }
        }
    }

    func testDequantizeMatchesGGUFPy() throws {
        for c in vectors.cases {
            for (name, bytes) in c.encoded {
                let dtype = try XCTUnwrap(DType(rawValue: name))
                let info = TensorInfo(name: c.name, dtype: dtype, shape: [c.rows, c.cols], byteCount: bytes.count)
                let got = try dequantizeToFloat(TensorData(info: info, copying: bytes))
                XCTAssertEqual(qvBits(got), qvBits(c.decoded[name] ?? []), "\(c.name) \(name)")
            }
        }
    }

    func testDequantizeOnlyBlockTypes() throws {
        for b in vectors.blocks {
            let info = TensorInfo(name: b.name, dtype: b.dtype, shape: [b.rows, b.cols], byteCount: b.bytes.count)
            let got = try dequantizeToFloat(TensorData(info: info, copying: b.bytes))
            XCTAssertEqual(qvBits(got), qvBits(b.decoded), b.name)
            let ref: [Float]
            switch b.dtype {
            case .Q8_0: ref = Q8_0Codec.decodeReference(b.bytes)
            case .Q4_0: ref = Q4_0Codec.decodeReference(b.bytes)
            default: ref = LegacyBlockDecoder.decodeReference(b.bytes, dtype: b.dtype)
            }
            XCTAssertEqual(qvBits(ref), qvBits(b.decoded), b.name + " reference")
        }
    }

    func testBlockTypesRefuseRowsNotMultipleOf32() throws {
        let c = try XCTUnwrap(vectors.cases.first { $0.name == "odd_rows" })
        XCTAssertNil(c.encoded["Q8_0"])  // gguf-py cannot make them either
        for dtype in [DType.Q8_0, .Q4_0] {
            XCTAssertThrowsError(try Quantizer.encode(c.input, rowLength: c.cols, to: dtype)) { error in
                XCTAssertEqual(error as? QuantError, .badRowLength(tensor: "", rowLength: 10, blockSize: 32))
            }
            XCTAssertThrowsError(try Quantizer.storedByteCount(shape: [c.rows, c.cols], as: dtype))
        }
        XCTAssertEqual(try Quantizer.storedByteCount(shape: [c.rows, c.cols], as: .F16), 60)
        XCTAssertThrowsError(try Quantizer.encode([1, 2], rowLength: 2, to: .Q4_1))  // decode-only type
    }

    /// Overflow report against gguf-py's own output: a finite input whose expected f16 is inf, or a
    /// block whose expected f16 scale is inf.
    func testOverflowReportAgreesWithGGUFPyOutput() throws {
        for c in vectors.cases {
            guard let f16 = c.encoded["F16"] else { continue }
            var expected: [Int] = []
            for i in 0..<c.input.count where c.input[i].isFinite {
                let h = UInt16(f16[2 * i]) | UInt16(f16[2 * i + 1]) << 8
                if h & 0x7FFF == 0x7C00 { expected.append(i) }
            }
            let report = Quantizer.overflow(c.input, to: .F16)
            XCTAssertEqual(report?.count ?? 0, expected.count, c.name)
            XCTAssertEqual(report?.firstIndex, expected.first, c.name)
            for (name, stride) in [("Q8_0", 34), ("Q4_0", 18)] {
                guard let q = c.encoded[name] else { continue }
                var lost = 0
                for b in 0..<q.count / stride {
                    let d = UInt16(q[b * stride]) | UInt16(q[b * stride + 1]) << 8
                    if d & 0x7C00 == 0x7C00 { lost += c.input[b * 32..<(b + 1) * 32].filter(\.isFinite).count }
                }
                let r = Quantizer.overflow(c.input, to: DType(rawValue: name)!)
                XCTAssertEqual(r?.count ?? 0, lost, "\(c.name) \(name)")
            }
        }
        let huge = try XCTUnwrap(vectors.cases.first { $0.name == "huge" })
        XCTAssertNotNil(Quantizer.overflow(huge.input, to: .F16))
        XCTAssertNotNil(Quantizer.overflow(huge.input, to: .Q8_0))
    }
}
