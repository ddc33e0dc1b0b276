import Foundation
import PixconvCore
import PixconvQuant
import PixconvReaders
import XCTest
@testable import PixconvRuntime

/// Checks the T5 encoder against transformers' T5EncoderModel on the tiny pipeline's sharded
/// text encoder (fixtures/text/t5-outputs.safetensors, from scripts/make_text_reference.py).
final class T5EncoderTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static func t5Path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    private static func t5Config() throws -> T5Config {
        let data = try Data(contentsOf: URL(fileURLWithPath: t5Path("fixtures/tiny-pixart-512/text_encoder/config.json")))
        return try JSONDecoder().decode(T5Config.self, from: data)
    }

    private static func t5Weights() throws -> Weights {
        Weights(try SafetensorsIndex(path: t5Path("fixtures/tiny-pixart-512/text_encoder/model.safetensors.index.json")))
    }

    private struct T5Case {
        var prompt: String
        var ids: [Int32]
        var mask: [Int32]
        var hidden: [Float]
        var shape: [Int]
    }

    private static func t5Cases() throws -> [T5Case] {
        let file = try SafetensorsFile(path: t5Path("fixtures/text/t5-outputs.safetensors"))
        func ints(_ name: String) throws -> [Int32] {
            let data = try file.data(for: name)
            XCTAssertEqual(data.info.dtype, .I64)
            return (0..<data.info.elementCount).map { Int32(truncatingIfNeeded: data.bytes.readLE($0 * 8, as: Int64.self)) }
        }
        var cases: [T5Case] = []
        var k = 0
        while file.info(named: "hidden_\(k)") != nil {
            let hidden = try file.data(for: "hidden_\(k)")
            cases.append(T5Case(prompt: file.metadata["prompt_\(k)"] ?? "", ids: try ints("ids_\(k)"), mask: try ints("mask_\(k)"),
                                hidden: try dequantizeToFloat(hidden), shape: hidden.info.shape))
            k += 1
        }
        return cases
    }

    private func assertClose(_ got: [Float], _ want: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, message, file: file, line: line)
        let scale = max(1, want.map { abs($0) }.max() ?? 0)
        var worst: Float = 0
        for (a, b) in zip(got, want) {
            XCTAssertTrue(a.isFinite, message, file: file, line: line)
            worst = max(worst, abs(a - b))
        }
        XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(message): max abs diff \(worst), scale \(scale)", file: file, line: line)
    }

    func testConfigDecodesPipelineConfig() throws {
        let c = try Self.t5Config()
        // fixtures/tiny-pixart-512/text_encoder/config.json: d_model 32, d_kv 8, 4 heads, 2 layers, d_ff 64,
        // gated-gelu, 32 buckets, 128, 1e-6
        XCTAssertEqual(c, T5Config(dModel: 32, dKv: 8, numHeads: 4, numLayers: 2, dFf: 64, feedForwardProj: "gated-gelu",
                                   relativeAttentionNumBuckets: 32, relativeAttentionMaxDistance: 128,
                                   layerNormEpsilon: 1e-6, vocabSize: c.vocabSize))
        XCTAssertEqual(try c.feedForward().gated, true)
        XCTAssertEqual(try c.feedForward().activation, .geluNew)
        let plain = try JSONDecoder().decode(T5Config.self, from: Data(#"{"feed_forward_proj": "relu", "d_model": 16}"#.utf8))
        XCTAssertEqual(try plain.feedForward().gated, false)
        XCTAssertEqual(try plain.feedForward().activation, .relu)
        XCTAssertEqual(plain.numHeads, 8)  // T5Config default
        XCTAssertThrowsError(try T5Config(feedForwardProj: "fancy-gelu").feedForward())
        XCTAssertThrowsError(try T5Config(dModel: 0).validate())
    }

    func testEncoderMatchesTransformers() throws {
        let encoder = try T5Encoder(config: try Self.t5Config(), weights: try Self.t5Weights())
        let cases = try Self.t5Cases()
        XCTAssertGreaterThanOrEqual(cases.count, 4)
        for c in cases {
            XCTAssertEqual(c.shape, [c.ids.count, encoder.config.dModel])
            let out = try encoder.encode(ids: c.ids, mask: c.mask)
            assertClose(out, c.hidden, "prompt \(c.prompt.debugDescription)")
        }
        // the unconditional prompt: "" → [</s>, <pad>…] with mask [1, 0…]
        XCTAssertEqual(cases[0].ids.prefix(2), [1, 0])
        XCTAssertEqual(cases[0].mask.reduce(0, +), 1)
    }

    func testTokenizerAndEncoderEndToEnd() throws {
        let model = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.t5Path("fixtures/tiny-pixart-512/tokenizer/spiece.model"))))
        let tokenizer = try T5Tokenizer(spieceModel: model)
        let encoder = try T5Encoder(config: try Self.t5Config(), weights: try Self.t5Weights())
        let cases = try Self.t5Cases()
        let encoded = cases.map { tokenizer.encode(pixArtPreprocess($0.prompt)) }
        for (c, e) in zip(cases, encoded) {
            XCTAssertEqual(e.ids, c.ids, "ids of \(c.prompt.debugDescription)")
            XCTAssertEqual(e.mask, c.mask, "mask of \(c.prompt.debugDescription)")
        }
        // a batch widens the weights once and gives the same rows as single calls
        let batch = try encoder.encode(batch: encoded)
        for (c, out) in zip(cases, batch) { assertClose(out, c.hidden, "batched \(c.prompt.debugDescription)") }
    }

    /// The pipeline encodes only the attended tokens: their rows must be transformers' rows, and
    /// the padding rows zeros; a mask that is not ones-then-zeros is encoded whole.
    func testEncodeAttendedGivesTheAttendedRows() throws {
        let encoder = try T5Encoder(config: try Self.t5Config(), weights: try Self.t5Weights())
        let d = encoder.config.dModel
        let cases = try Self.t5Cases()
        let padded = cases.filter { $0.mask.contains(0) }
        XCTAssertGreaterThanOrEqual(padded.count, 2, "the fixtures hold padded prompts")
        let out = try encoder.encodeAttended(batch: cases.map { ($0.ids, $0.mask) })
        for (c, rows) in zip(cases, out) {
            let n = c.mask.reduce(0) { $0 + Int($1) }
            XCTAssertEqual(rows.count, c.ids.count * d)
            assertClose(Array(rows[..<(n * d)]), Array(c.hidden[..<(n * d)]), "attended rows of \(c.prompt.debugDescription)")
            XCTAssertTrue(rows[(n * d)...].allSatisfy { $0 == 0 }, "padding rows of \(c.prompt.debugDescription) are zero")
        }
        // a mask with a hole is not the tokenizer's padding: the whole sequence is encoded
        var holed = padded[0]
        holed.mask[0] = 0
        holed.mask[1] = 1
        let whole = try encoder.encode(ids: holed.ids, mask: holed.mask)
        XCTAssertEqual(try encoder.encodeAttended(batch: [(holed.ids, holed.mask)])[0], whole)
    }

    func testRelativePositionBuckets() {
        // formats/pixart.md §3 table for num_buckets 32, max_distance 128: n → bucket (d ≤ 0), +16 for d > 0
        func expected(_ n: Int) -> Int {
            switch n {
            case 0..<8: return n
            case 8..<12: return 8
            case 12..<16: return 9
            case 16..<23: return 10
            case 23..<32: return 11
            case 32..<46: return 12
            case 46..<64: return 13
            case 64..<91: return 14
            default: return 15
            }
        }
        for n in 0..<300 {
            XCTAssertEqual(T5Layers.relativePositionBucket(-n, numBuckets: 32, maxDistance: 128), expected(n), "d = -\(n)")
            if n > 0 {
                XCTAssertEqual(T5Layers.relativePositionBucket(n, numBuckets: 32, maxDistance: 128), 16 + expected(n), "d = \(n)")
            }
        }
    }

    func testAttentionMatchesReference() {
        var state: UInt64 = 7
        func rand() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(state >> 40) % 2001 - 1000) / 500
        }
        let length = 9, heads = 3, dKv = 5, inner = heads * dKv
        let q = (0..<(length * inner)).map { _ in rand() }
        let k = (0..<(length * inner)).map { _ in rand() }
        let v = (0..<(length * inner)).map { _ in rand() }
        let table = (0..<(32 * heads)).map { _ in rand() }
        let mask: [Int32] = [1, 1, 1, 1, 0, 1, 0, 0, 0]
        let bias = T5Layers.positionBias(length: length, mask: mask, table: table, heads: heads, numBuckets: 32, maxDistance: 128)
        XCTAssertTrue(bias.allSatisfy { $0.isFinite })
        let fast = T5Layers.attention(q: q, k: k, v: v, bias: bias, length: length, heads: heads, dKv: dKv)
        let slow = T5Layers.attentionReference(q: q, k: k, v: v, bias: bias, length: length, heads: heads, dKv: dKv)
        assertClose(fast, slow, "attention")
        // masked keys get exactly zero weight: changing their values changes nothing
        var v2 = v
        for j in [4, 6, 7, 8] { for c in 0..<inner { v2[j * inner + c] = 1e6 } }
        XCTAssertEqual(T5Layers.attention(q: q, k: k, v: v2, bias: bias, length: length, heads: heads, dKv: dKv), fast)
    }

    func testBadInputsThrow() throws {
        let config = try Self.t5Config()
        let weights = try Self.t5Weights()
        let encoder = try T5Encoder(config: config, weights: weights)
        XCTAssertThrowsError(try encoder.encode(ids: [1, 0], mask: [1]))
        XCTAssertThrowsError(try encoder.encode(ids: [], mask: []))
        XCTAssertThrowsError(try encoder.encode(ids: [Int32(config.vocabSize)], mask: [1]))
        XCTAssertThrowsError(try encoder.encode(ids: [-1], mask: [1]))
        var wide = config
        wide.dModel = 64
        XCTAssertThrowsError(try T5Encoder(config: wide, weights: weights)) { error in
            guard case RuntimeError.shapeMismatch = error else { return XCTFail("\(error)") }
        }
        var deep = config
        deep.numLayers = 3
        XCTAssertThrowsError(try T5Encoder(config: deep, weights: weights)) { error in
            XCTAssertEqual(error as? RuntimeError, .missingTensor("encoder.block.2.layer.0.SelfAttention.q.weight"))
        }
        // no blocks: the output is the final RMSNorm of the embeddings
        var none = config
        none.numLayers = 0
        let embedOnly = try T5Encoder(config: none, weights: weights).encode(ids: [5, 1], mask: [1, 1])
        let table = try weights.floats("shared.weight")
        let norm = try weights.floats("encoder.final_layer_norm.weight")
        for (r, id) in [5, 1].enumerated() {
            let row = Array(table[(id * config.dModel)..<((id + 1) * config.dModel)])
            let rms = (row.map { Double($0) * Double($0) }.reduce(0, +) / Double(config.dModel) + 1e-6).squareRoot()
            let want = zip(row, norm).map { Float(Double($0) / rms) * $1 }
            assertClose(Array(embedOnly[(r * config.dModel)..<((r + 1) * config.dModel)]), want, "embedding row \(id)")
        }
        var plain = config
        plain.feedForwardProj = "relu"  // expects wi.weight, which the gated checkpoint lacks
        XCTAssertThrowsError(try T5Encoder(config: plain, weights: weights)) { error in
            XCTAssertEqual(error as? RuntimeError, .missingTensor("encoder.block.0.layer.1.DenseReluDense.wi.weight"))
        }
    }

    /// In-memory tensors, to feed the encoder 16-bit weights.
    private final class T5MemorySource: TensorSource, @unchecked Sendable {
        let tensors: [TensorInfo]
        private let data: [String: TensorData]
        init(_ items: [TensorData]) {
            tensors = items.map(\.info).sorted { $0.name < $1.name }
            data = Dictionary(uniqueKeysWithValues: items.map { ($0.info.name, $0) })
        }
        func data(for name: String) throws -> TensorData {
            guard let d = data[name] else { throw RuntimeError.missingTensor(name) }
            return d
        }
    }

    /// The checkpoint rounded to f16 or bf16: stored as 16-bit, and widened back to f32.
    private static func t5Rounded(bf16: Bool) throws -> (half: Weights, widened: Weights) {
        let source = try SafetensorsIndex(path: t5Path("fixtures/tiny-pixart-512/text_encoder/model.safetensors.index.json"))
        var half: [TensorData] = []
        var widened: [TensorData] = []
        for info in source.tensors {
            let values = try dequantizeToFloat(try source.data(for: info.name))
            let bits = values.map { bf16 ? floatToBFloat16Bits($0) : floatToHalfBits($0) }
            let back = bits.map { bf16 ? bfloat16BitsToFloat($0) : halfBitsToFloat($0) }
            let bytes16 = bits.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let bytes32 = back.flatMap { v -> [UInt8] in
                let b = v.bitPattern
                return [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
            }
            half.append(TensorData(info: TensorInfo(name: info.name, dtype: bf16 ? .BF16 : .F16, shape: info.shape,
                                                    byteCount: bytes16.count), copying: bytes16))
            widened.append(TensorData(info: TensorInfo(name: info.name, dtype: .F32, shape: info.shape,
                                                       byteCount: bytes32.count), copying: bytes32))
        }
        return (Weights(T5MemorySource(half)), Weights(T5MemorySource(widened)))
    }

    /// 16-bit weights are widened exactly (embedding rows one at a time, blocks per layer): the
    /// output equals the one from the same values stored as f32, and stays near the f32 reference.
    func testHalfPrecisionWeights() throws {
        let config = try Self.t5Config()
        let cases = try Self.t5Cases()
        for bf16 in [false, true] {
            let (half, widened) = try Self.t5Rounded(bf16: bf16)
            let a = try T5Encoder(config: config, weights: half)
            let b = try T5Encoder(config: config, weights: widened)
            for c in cases {
                // f32 arithmetic widens 16-bit weights exactly; by default bf16 weights run bf16 dot
                // products (activations rounded to bf16) where the CPU has them, hence the tolerance below.
                Engine.compute = .f32
                let exact = try a.encode(ids: c.ids, mask: c.mask)
                Engine.compute = .native
                XCTAssertEqual(exact, try b.encode(ids: c.ids, mask: c.mask), "bf16 \(bf16): \(c.prompt.debugDescription)")
                let out = try a.encode(ids: c.ids, mask: c.mask)
                let scale = max(1, c.hidden.map { abs($0) }.max() ?? 0)
                let worst = zip(out, c.hidden).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(worst, (bf16 ? 0.1 : 0.01) * scale, "bf16 \(bf16): \(c.prompt.debugDescription)")
                XCTAssertGreaterThan(worst, 0, "rounding must change something")
            }
        }
    }
}
