import Foundation
import XCTest
@testable import PixconvStore

final class KeyMapTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func testEmbeddedTablesEqualTheFilesInFormats() throws {
        for (file, embedded) in [("keymap-pixart-original.tsv", KeyMap.pixartOriginalText),
                                 ("keymap-diffusers-legacy.tsv", KeyMap.diffusersLegacyText)] {
            let text = try String(contentsOf: Self.root.appendingPathComponent("formats/\(file)"), encoding: .utf8)
            XCTAssertEqual(text.trimmingCharacters(in: .newlines), embedded,
                           "\(file) changed: run scripts/embed_formats.sh")
        }
    }

    func testOriginalLayoutRules() {
        let map = KeyMap.pixartOriginal
        XCTAssertEqual(map.mapping(for: "blocks.12.attn.qkv.weight"),
                       .init(source: "blocks.12.attn.qkv.weight", operation: .split,
                             targets: ["transformer_blocks.12.attn1.to_q.weight", "transformer_blocks.12.attn1.to_k.weight",
                                       "transformer_blocks.12.attn1.to_v.weight"]))
        XCTAssertEqual(map.mapping(for: "blocks.3.cross_attn.kv_linear.bias")?.targets,
                       ["transformer_blocks.3.attn2.to_k.bias", "transformer_blocks.3.attn2.to_v.bias"])
        XCTAssertEqual(map.mapping(for: "t_block.1.weight")?.targets, ["adaln_single.linear.weight"])
        XCTAssertEqual(map.mapping(for: "final_layer.scale_shift_table")?.targets, ["scale_shift_table"])
        XCTAssertEqual(map.mapping(for: "pos_embed")?.operation, .drop)
        XCTAssertEqual(map.mapping(for: "y_embedder.y_embedding")?.operation, .drop)
        // Whole-key matching: a longer or shorter key does not match.
        XCTAssertNil(map.mapping(for: "pos_embed.extra"))
        XCTAssertNil(map.mapping(for: "blocks.x.attn.qkv.weight"))
        XCTAssertNil(map.mapping(for: "blocks.1.attn.qkv."))
    }

    func testLegacyRulesMatchDottedPrefixes() {
        let map = KeyMap.diffusersLegacy
        XCTAssertEqual(map.mapping(for: "decoder.mid_block.attentions.0.proj_attn.weight")?.targets,
                       ["decoder.mid_block.attentions.0.to_out.0.weight"])
        XCTAssertEqual(map.mapping(for: "decoder.mid_block.attentions.0.query.bias")?.targets,
                       ["decoder.mid_block.attentions.0.to_q.bias"])
        XCTAssertNil(map.mapping(for: "decoder.mid_block.attentions.0.to_q.bias"))
    }

    func testMalformedTablesAreRejected() {
        XCTAssertThrowsError(try KeyMap(tsv: "a.*\tcopy"))
        XCTAssertThrowsError(try KeyMap(tsv: "a.*\tsplit\tb.*"))
        XCTAssertThrowsError(try KeyMap(tsv: "a\tmove\tb"))
        XCTAssertThrowsError(try KeyMap(tsv: "a\tdrop\tb"))
    }
}
