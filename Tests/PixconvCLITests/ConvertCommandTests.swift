import Foundation
import PixconvCore
import PixconvReaders
import XCTest

/// `pixconv convert` end to end.
final class ConvertCommandTests: XCTestCase {
    /// An original PixArt `.pth` converted to diffusers safetensors equals diffusers' official
    /// conversion (scripts/convert_pixart_alpha_to_diffusers.py logic, committed by make_fixtures.py)
    /// tensor for tensor, byte for byte.
    func testOriginalCheckpointEqualsTheOfficialDiffusersConversion() throws {
        let dir = try CLI.temporaryDirectory()
        for (input, ema, reference) in [("pixart-original.pth", false, "diffusers-conversion"),
                                        ("pixart-original-ms.pth", false, "diffusers-conversion-ms"),
                                        ("pixart-original-ms.pth", true, "diffusers-conversion-ms-ema")] {
            let out = dir + "/\(reference).safetensors"
            var args = ["convert", CLI.fixture("readers/" + input), "-o", out, "--format", "safetensors", "--type", "f32"]
            if ema { args.append("--ema") }
            let result = try CLI.run(args)
            XCTAssertEqual(result.status, 0, result.stderr)
            let mine = try SafetensorsFile(path: out)
            let official = try SafetensorsFile(path: CLI.fixture("readers/\(reference)/diffusion_pytorch_model.safetensors"))
            XCTAssertEqual(mine.tensors.map(\.name), official.tensors.map(\.name), reference)
            for info in official.tensors {
                let a = try mine.data(for: info.name), b = try official.data(for: info.name)
                XCTAssertEqual(a.info.shape, b.info.shape, info.name)
                XCTAssertTrue(a.bytes.elementsEqual(b.bytes), "\(reference): \(info.name) differs")
            }
        }
    }

    func testStoreOfEveryTypeIsReadBack() throws {
        let dir = try CLI.temporaryDirectory()
        for type in ["f32", "f16", "bf16", "q8_0", "int4"] {
            let out = dir + "/tiny.\(type).gguf"
            let result = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", out, "--type", type, "--json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(summary["components"] as? [String], ["transformer", "text_encoder", "vae", "tokenizer", "scheduler"])
            let inspect = try CLI.run(["inspect", out, "--json"])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(report["format"] as? String, "gguf")
            XCTAssertEqual(report["tensor_count"] as? Int, summary["tensor_count"] as? Int)
            let stored = try XCTUnwrap((report["store"] as? [String: Any])?["stored_types"] as? [String: Int])
            let target = ["int4": "Q4_0", "q8_0": "Q8_0", "f16": "F16", "bf16": "BF16", "f32": "F32"][type]!
            XCTAssertNotNil(stored[target], "\(type): \(stored)")
            // The policy keeps small and 1-D tensors in f32 whatever the target.
            XCTAssertNotNil(stored["F32"], "\(type): \(stored)")
        }
    }

    func testOutputIsDeterministicAndNotReplacedWithoutForce() throws {
        let dir = try CLI.temporaryDirectory()
        let a = dir + "/a.gguf", b = dir + "/b.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-1024ms"), "-o", a, "--type", "q4_0"]).status, 0)
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-1024ms"), "-o", b, "--type", "q4_0"]).status, 0)
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: a)), bytesB = try Data(contentsOf: URL(fileURLWithPath: b))
        XCTAssertEqual(bytesA, bytesB, "the same inputs give byte-identical stores")
        let again = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", a, "--type", "f16"])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("--force"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), bytesA, "an existing output is kept")
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", a, "--type", "f16", "--force"]).status, 0)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: a)), bytesA)
    }

    func testFailedConversionLeavesNoOutput() throws {
        let dir = try CLI.temporaryDirectory()
        // A component whose weights file is damaged half-way: the header is fine, data is cut.
        let broken = dir + "/transformer"
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLI.fixture("tiny-pixart-512/transformer/config.json"), toPath: broken + "/config.json")
        var weights = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("tiny-pixart-512/transformer/diffusion_pytorch_model.safetensors")))
        weights.removeLast(4096)
        try weights.write(to: URL(fileURLWithPath: broken + "/diffusion_pytorch_model.safetensors"))
        let out = dir + "/out.gguf"
        let result = try CLI.run(["convert", broken, "-o", out])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("diffusion_pytorch_model.safetensors"), result.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "transformer" }
        XCTAssertEqual(left, [], "no output and no temporary file is left behind")
    }

    func testUsageErrors() throws {
        XCTAssertEqual(try CLI.run(["convert", "x", "-o", "y", "--type", "q3_k"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", "-o", "y"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", "x", "-o", "y", "--format", "onnx"]).status, 2)
        let quantizedSafetensors = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", "/tmp/x", "--format", "safetensors", "--type", "q8_0"])
        XCTAssertEqual(quantizedSafetensors.status, 1)
        XCTAssertTrue(quantizedSafetensors.stderr.contains("f32, f16 or bf16"), quantizedSafetensors.stderr)
    }
}
