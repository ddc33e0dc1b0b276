import XCTest
import PixconvCore
@testable import PixconvStore

/// The precision rules of formats/store.md, case by case, on PixArt-α / T5 / VAE tensor names.
final class PrecisionPolicyTests: XCTestCase {
    func testRulesForQ8_0() throws {
        let p = try PrecisionPolicy(targetName: "q8_0")
        let cases: [(String, [Int], DType, PrecisionPolicy.Reason)] = [
            ("dit.transformer_blocks.0.attn1.to_q.weight", [1152, 1152], .Q8_0, .target),
            ("dit.transformer_blocks.0.attn1.to_q.bias", [1152], .F32, .oneDimensional),
            ("dit.transformer_blocks.0.scale_shift_table", [6, 1152], .F32, .scaleShiftTable),
            ("dit.scale_shift_table", [2, 1152], .F32, .scaleShiftTable),
            ("dit.pos_embed.proj.weight", [1152, 4, 2, 2], .F32, .embedding),
            ("dit.y_embedder.y_embedding", [120, 4096], .F32, .embedding),
            ("dit.caption_projection.linear_1.weight", [1152, 4096], .Q8_0, .target),
            ("dit.proj_out.weight", [32, 1152], .Q8_0, .target),
            ("te.shared.weight", [32128, 4096], .F32, .embedding),
            ("te.encoder.embed_tokens.weight", [32128, 4096], .F32, .embedding),
            ("te.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [32, 64], .F32, .embedding),
            ("te.encoder.block.0.layer.0.layer_norm.weight", [4096], .F32, .oneDimensional),
            ("te.encoder.block.0.layer.1.DenseReluDense.wi_0.weight", [10240, 4096], .Q8_0, .target),
            ("vae.decoder.conv_in.weight", [512, 4, 3, 3], .F16, .rowNotBlockMultiple),
            ("vae.decoder.mid_block.attentions.0.group_norm.weight", [512], .F32, .oneDimensional),
            ("vae.decoder.up_blocks.0.resnets.0.norm1.weight", [2, 1024], .F32, .norm),
            ("vae.decoder.conv_out.weight", [3, 128, 3, 3], .F16, .rowNotBlockMultiple),
            ("dit.tiny.weight", [32, 32], .F32, .small),
            ("dit.tiny2.weight", [33, 32], .Q8_0, .target),
            ("dit.odd.weight", [40, 48], .F16, .rowNotBlockMultiple),
            ("te.counts", [5, 400], .I64, .notFloatingPoint),
        ]
        for (name, shape, want, why) in cases {
            let source: DType = name == "te.counts" ? .I64 : .F32
            let got = p.decide(name: name, shape: shape, source: source)
            XCTAssertEqual(got.dtype, want, name)
            XCTAssertEqual(got.reason, why, name)
        }
    }

    func testOtherTargetsAndKeepPatterns() throws {
        let big = [1152, 1152]
        XCTAssertEqual(try PrecisionPolicy(target: .F16).storedType(name: "dit.x.weight", shape: big, source: .F32), .F16)
        XCTAssertEqual(try PrecisionPolicy(target: .BF16).storedType(name: "dit.x.weight", shape: big, source: .F16), .BF16)
        XCTAssertEqual(try PrecisionPolicy(target: .F32).storedType(name: "dit.x.weight", shape: big, source: .BF16), .F32)
        // Row rule only applies to block targets.
        XCTAssertEqual(try PrecisionPolicy(target: .F16).storedType(name: "vae.conv.weight", shape: [512, 4, 3, 3], source: .F32), .F16)
        XCTAssertEqual(try PrecisionPolicy(target: .Q4_0).storedType(name: "vae.conv.weight", shape: [512, 4, 3, 3], source: .F32), .F16)

        let keep = try PrecisionPolicy(target: .Q4_0, keepF32: ["dit.transformer_blocks.27.*", "*.proj_out.weight"])
        XCTAssertEqual(keep.decide(name: "dit.transformer_blocks.27.ff.net.0.proj.weight", shape: big, source: .F32).reason, .keepPattern)
        XCTAssertEqual(keep.storedType(name: "dit.transformer_blocks.2.ff.net.0.proj.weight", shape: big, source: .F32), .Q4_0)
        XCTAssertEqual(keep.storedType(name: "dit.proj_out.weight", shape: [32, 1152], source: .F32), .F32)
        XCTAssertTrue(keep.summary.contains("keep-f32: dit.transformer_blocks.27.*, *.proj_out.weight"))
        XCTAssertTrue(keep.summary.hasPrefix("target=q4_0;"))

        XCTAssertThrowsError(try PrecisionPolicy(target: .Q5_0))
        XCTAssertThrowsError(try PrecisionPolicy(targetName: "q2_k"))
        XCTAssertThrowsError(try PrecisionPolicy(target: .F16, keepF32: [""]))
    }

    func testGlob() {
        let yes: [(String, String)] = [
            ("*", ""), ("*", "a.b.c"), ("a.*", "a.b.c"), ("*.c", "a.b.c"), ("a*c", "abc"), ("a*c", "ac"),
            ("*b*", "abc"), ("a.b.c", "a.b.c"), ("**", "x"), ("*a*a*", "banana"),
        ]
        let no: [(String, String)] = [
            ("a.*", "b.a"), ("*.c", "a.b.cd"), ("a*c", "ab"), ("a.b", "a.b.c"), ("", "a"), ("a?c", "abc"),
        ]
        for (p, n) in yes { XCTAssertTrue(PrecisionPolicy.globMatch(p, n), "\(p) ~ \(n)") }
        for (p, n) in no { XCTAssertFalse(PrecisionPolicy.globMatch(p, n), "\(p) !~ \(n)") }
    }
}
