import Foundation
import PixconvCore
import PixconvReaders
import XCTest

/// GGUF files written by gguf-py's GGUFWriter as ComfyUI-GGUF does (`scripts/make_foreign_gguf.py`,
/// `fixtures/foreign/`): `inspect` lists their F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 tensors, and
/// `convert` to an f32 store (then to safetensors) reproduces gguf-py's dequantization bit for bit.
final class CorpusForeignGGUFTests: XCTestCase {
    private struct Manifest: Decodable {
        struct Tensor: Decodable {
            var type: String
            var shape: [Int]
        }

        var layout: String
        var tensors: [String: Tensor]
    }

    private func manifest() throws -> [String: Manifest] {
        let data = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("foreign/expected.json")))
        return try JSONDecoder().decode([String: Manifest].self, from: data)
    }

    func testInspectListsForeignTypesAndShapes() throws {
        let files = try manifest()
        XCTAssertEqual(Set(files.values.flatMap { $0.tensors.values.map(\.type) }),
                       ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
        for (name, expected) in files.sorted(by: { $0.key < $1.key }) {
            let run = try CLI.run(["inspect", CLI.fixture("foreign/" + name), "--json"])
            XCTAssertEqual(run.status, 0, "\(name): \(run.stderr)")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(report["format"] as? String, "gguf")
            XCTAssertTrue(report["store"] == nil || report["store"] is NSNull, "\(name) is not a pixconv store")
            let tensors = try XCTUnwrap(report["tensors"] as? [[String: Any]])
            XCTAssertEqual(tensors.count, expected.tensors.count, name)
            for t in tensors {
                let tensorName = try XCTUnwrap(t["name"] as? String)
                let want = try XCTUnwrap(expected.tensors[tensorName], "\(name): unexpected tensor \(tensorName)")
                XCTAssertEqual(t["dtype"] as? String, want.type, "\(name): \(tensorName)")
                XCTAssertEqual(t["shape"] as? [Int], want.shape, "\(name): \(tensorName)")
            }
            let components = try XCTUnwrap(report["components"] as? [[String: Any]])
            let kind = try XCTUnwrap(components.first?["kind"] as? [String: Any], name)
            XCTAssertEqual(kind["layout"] as? String, expected.layout, name)
        }
    }

    func testConvertToStoreEqualsGGUFPyDequantization() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in try manifest().keys.sorted() {
            let stem = String(name.dropLast(".gguf".count))
            let store = dir + "/\(stem).store.gguf", out = dir + "/\(stem).safetensors"
            let convert = try CLI.run(["convert", CLI.fixture("foreign/" + name), "-o", store, "--type", "f32"])
            XCTAssertEqual(convert.status, 0, "\(name): \(convert.stderr)")
            let verify = try CLI.run(["verify", "--model", store])
            XCTAssertEqual(verify.status, 0, "\(name): \(verify.stdout) \(verify.stderr)")
            let export = try CLI.run(["convert", store, "-o", out, "--format", "safetensors", "--type", "f32"])
            XCTAssertEqual(export.status, 0, "\(name): \(export.stderr)")
            let mine = try SafetensorsFile(path: out)
            let expected = try SafetensorsFile(path: CLI.fixture("foreign/\(stem).expected.safetensors"))
            XCTAssertEqual(mine.tensors.map(\.name), expected.tensors.map(\.name), name)
            for info in expected.tensors {
                guard let a = try? mine.data(for: info.name) else { continue }
                let b = try expected.data(for: info.name)
                XCTAssertEqual(a.info.dtype, .F32, "\(name): \(info.name)")
                XCTAssertEqual(a.info.shape, b.info.shape, "\(name): \(info.name)")
                XCTAssertTrue(a.bytes.elementsEqual(b.bytes), "\(name): \(info.name) differs from gguf-py's dequantization")
            }
        }
    }

    /// ggml's checks (`gguf.cpp`): each tensor at the running, aligned offset; a valid type id.
    func testBrokenForeignHeadersAreRefused() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases = [("broken-offset.gguf", "tensor 'x_embedder.proj.weight' has offset 776, expected 768"),
                     ("broken-type.gguf", "tensor 'pos_embed' has invalid ggml type 42")]
        for (name, fragment) in cases {
            let path = CLI.fixture("foreign/" + name)
            for command in [["inspect", path], ["convert", path, "-o", dir + "/out.gguf", "--type", "f32"]] {
                let run = try CorpusRunner.run(command, timeout: 30)
                if let problem = BadInputCorpusTests.mismatch(run, .reject(fragment), path: path) {
                    XCTFail("\(name) \(command[0]): \(problem)")
                }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out.gguf"))
        }
    }
}
