import Foundation
import XCTest

/// `pixconv inspect` end to end, against `fixtures/readers/expected.json` (made by torch).
final class InspectCommandTests: XCTestCase {
    private func expected(_ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("readers/expected.json")))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let files = try XCTUnwrap(root["files"] as? [String: Any])
        return try XCTUnwrap(files[file] as? [String: Any])
    }

    func testJSONListsEveryTensorAsTorchSeesIt() throws {
        for file in ["pixart-original.pth", "views.pt", "legacy.pt", "transformer-bf16.safetensors", "sharded/model.safetensors.index.json"] {
            let result = try CLI.run(["inspect", CLI.fixture("readers/" + file), "--json"])
            XCTAssertEqual(result.status, 0, file + ": " + result.stderr)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let tensors = try XCTUnwrap(report["tensors"] as? [[String: Any]])
            let want = try XCTUnwrap(try expected(file)["tensors"] as? [String: [String: Any]])
            XCTAssertEqual(Set(tensors.compactMap { $0["name"] as? String }), Set(want.keys), file)
            for t in tensors {
                let name = try XCTUnwrap(t["name"] as? String)
                guard let w = want[name] else { continue }
                XCTAssertEqual(t["dtype"] as? String, w["dtype"] as? String, "\(file) \(name)")
                XCTAssertEqual(t["shape"] as? [Int], w["shape"] as? [Int], "\(file) \(name)")
                XCTAssertEqual(t["bytes"] as? Int, w["bytes"] as? Int, "\(file) \(name)")
            }
            let names = tensors.compactMap { $0["name"] as? String }
            XCTAssertEqual(names, names.sorted(), "\(file): tensors are listed in sorted order")
            XCTAssertNotNil(report["metadata"])
            XCTAssertNotNil(report["components"])
            XCTAssertEqual(report["parameters"] as? Int,
                           want.values.reduce(0) { $0 + (($1["shape"] as? [Int]) ?? []).reduce(1, *) }, file)
        }
    }

    func testTextShowsKindValuesAndTotals() throws {
        let result = try CLI.run(["inspect", CLI.fixture("readers/pixart-original-ms.pth")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("PixArt transformer (original PixArt layout): depth 2, hidden 24"), result.stdout)
        XCTAssertTrue(result.stdout.contains("micro-conditions (α 1024-MS)"), result.stdout)
        XCTAssertTrue(result.stdout.contains("family: pixart-alpha-1024 (the transformer has micro-conditions"), result.stdout)
        XCTAssertTrue(result.stdout.contains("epoch = 3"), result.stdout)
        XCTAssertTrue(result.stdout.contains("state_dict.blocks.0.attn.qkv.weight"), result.stdout)
        let folder = try CLI.run(["inspect", CLI.fixture("tiny-pixart-1024ms")])
        XCTAssertEqual(folder.status, 0, folder.stderr)
        for line in ["[transformer] PixArt transformer (diffusers layout)", "[text_encoder] T5 encoder: d_model 32, 2 layers",
                     "[vae] SD-style VAE: latent channels 4, blocks [32, 64]", "[tokenizer] tokenizer (spiece.model)"] {
            XCTAssertTrue(folder.stdout.contains(line), line)
        }
    }

    func testBadInputIsOneLineAndStatusOne() throws {
        let dir = try CLI.temporaryDirectory()
        let cases: [(String, [UInt8])] = [
            ("empty.safetensors", []),
            ("short.safetensors", [1, 2, 3]),
            ("header-past-end.safetensors", [0xFF, 0xFF, 0, 0, 0, 0, 0, 0] + Array("{}".utf8)),
            ("broken.safetensors", [5, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\":".utf8)),
            ("evil.pt", [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("id".utf8) + [0x85, 0x52, 0x2E]),
        ]
        for (name, bytes) in cases {
            let path = dir + "/" + name
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let result = try CLI.run(["inspect", path])
            XCTAssertEqual(result.status, 1, "\(name): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(name), "\(name): the message names the file: \(result.stderr)")
        }
    }

    func testUsageErrorsExitTwo() throws {
        XCTAssertEqual(try CLI.run(["inspect"]).status, 2)
        XCTAssertEqual(try CLI.run(["inspect", "a", "--no-such-flag"]).status, 2)
        XCTAssertEqual(try CLI.run(["frobnicate"]).status, 2)
        let help = try CLI.run(["inspect", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("Examples:"))
    }
}
