import Foundation
import PixconvImage
import XCTest

/// `pixconv generate` and `pixconv verify` end to end, against the diffusers reference bundles.
final class GenerateVerifyCommandTests: XCTestCase {
    func testGenerateReproducesDiffusersAndRecordsMetadata() throws {
        let dir = try CLI.temporaryDirectory()
        let out = dir + "/cactus.png"
        // Case "cactus-dpm" of fixtures/reference-512 (diffusers, seed 0, 20 steps, guidance 4.5).
        let result = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-512"), "--prompt",
                                  "A small cactus with a happy face in the Sahara desert.", "--seed", "0", "-o", out, "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let image = try PNGImage.read(path: out)
        let reference = try PNGImage.read(path: CLI.fixture("reference-512/cactus-dpm.png"))
        XCTAssertEqual([image.width, image.height], [16, 16], "the model's native size by default")
        XCTAssertGreaterThanOrEqual(try ImageMetrics.psnr(reference.rgb, image.rgb), 40)
        let text = Dictionary(try PNGImage.readText(path: out).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(text["prompt"], "A small cactus with a happy face in the Sahara desert.")
        XCTAssertEqual(text["seed"], "0")
        XCTAssertEqual(text["steps"], "20")
        XCTAssertEqual(text["scheduler"], "dpm++2m")
        XCTAssertTrue(text["model"]?.hasPrefix("tiny-pixart-512 sha256:") == true, text["model"] ?? "")
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((summary["step_seconds"] as? [Double])?.count, 20)
    }

    func testCountWritesOneImagePerSeed() throws {
        let dir = try CLI.temporaryDirectory()
        let result = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-1024ms"), "--prompt", "a lake",
                                  "--steps", "3", "--height", "32", "--width", "48", "--count", "2", "--seed", "5", "-o", dir + "/lake.png"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let a = try PNGImage.read(path: dir + "/lake-5.png"), b = try PNGImage.read(path: dir + "/lake-6.png")
        XCTAssertEqual([a.width, a.height], [48, 32])
        XCTAssertNotEqual(a.rgb, b.rgb, "different seeds give different images")
        // The batched image for seed 6 equals a single run with seed 6.
        XCTAssertEqual(try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-1024ms"), "--prompt", "a lake", "--steps", "3",
                                    "--height", "32", "--width", "48", "--seed", "6", "-o", dir + "/single.png"]).status, 0)
        XCTAssertEqual(try PNGImage.read(path: dir + "/single.png").rgb, b.rgb)
    }

    /// --vae-tiling decodes in diffusers' tiles (reported as vae_tiled), which changes the image;
    /// --no-vae-tiling and a budget the decode fits keep the plain decode; a zero budget is refused.
    func testVAETilingOptions() throws {
        let dir = try CLI.temporaryDirectory()
        func run(_ extra: [String], _ name: String, size: (Int, Int) = (32, 48)) throws -> (tiled: Bool?, rgb: [UInt8]) {
            let result = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-512"), "--prompt", "a lake", "--steps", "2",
                                      "--height", String(size.0), "--width", String(size.1), "--json", "-o", dir + "/" + name] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            return (summary["vae_tiled"] as? Bool, try PNGImage.read(path: dir + "/" + name).rgb)
        }
        let tiled = try run(["--vae-tiling"], "tiled.png")
        let plain = try run(["--no-vae-tiling"], "plain.png")
        let fits = try run(["--memory-budget", "1024"], "fits.png")
        let small = try run(["--memory-budget", "1"], "small.png")  // 32×48 needs 0.75 MiB: fits
        let big = try run(["--memory-budget", "1"], "big.png", size: (64, 64))  // 64×64 needs 2 MiB: tiles
        let bigPlain = try run(["--no-vae-tiling"], "big-plain.png", size: (64, 64))
        XCTAssertEqual(tiled.tiled, true)
        XCTAssertEqual(plain.tiled, false)
        XCTAssertEqual(fits.tiled, false)
        XCTAssertEqual(small.tiled, false)
        XCTAssertEqual(big.tiled, true)
        XCTAssertNotEqual(big.rgb, bigPlain.rgb)
        XCTAssertNotEqual(tiled.rgb, plain.rgb, "tiles are blended, so the image differs")
        XCTAssertEqual(fits.rgb, plain.rgb)
        let zero = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-512"), "--prompt", "x", "--memory-budget", "0",
                                "-o", dir + "/zero.png"])
        XCTAssertEqual(zero.status, 2)
        XCTAssertTrue(zero.stderr.contains("--memory-budget"), zero.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/zero.png"))
    }

    func testGenerateErrors() throws {
        let dir = try CLI.temporaryDirectory()
        let missing = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-512/transformer"), "--prompt", "x", "-o", dir + "/x.png"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("missing component"), missing.stderr)
        let badSize = try CLI.run(["generate", "--model", CLI.fixture("tiny-pixart-512"), "--prompt", "x", "--height", "20", "-o", dir + "/x.png"])
        XCTAssertEqual(badSize.status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.png"))
    }

    func testVerifyPassesFailsAndSavesDiffs() throws {
        let dir = try CLI.temporaryDirectory()
        let store = dir + "/t.q8_0.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "q8_0"]).status, 0)
        let ok = try CLI.run(["verify", "--model", store, "--reference", CLI.fixture("reference-512"), "--json", "--save-diff", dir + "/diffs"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["weight_type"] as? String, "q8_0")
        let cases = try XCTUnwrap(report["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/diffs/cactus-dpm.diff.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/diffs/cactus-dpm.generated.png"))
        let strict = try CLI.run(["verify", "--model", store, "--reference", CLI.fixture("reference-512"), "--min-psnr", "200"])
        XCTAssertEqual(strict.status, 1)
        XCTAssertTrue(strict.stderr.contains("cactus-dpm"), strict.stderr)
    }

    func testVerifyRecordThenCompareAgainstItself() throws {
        let dir = try CLI.temporaryDirectory()
        let prompts = dir + "/prompts.json"
        try Data(#"[{"name": "owl", "prompt": "an owl", "steps": 4, "height": 16, "width": 16, "seed": 3}]"#.utf8)
            .write(to: URL(fileURLWithPath: prompts))
        let record = try CLI.run(["verify", "--record", dir + "/ref", "--model", CLI.fixture("tiny-pixart-512"), "--prompts", prompts])
        XCTAssertEqual(record.status, 0, record.stderr)
        let check = try CLI.run(["verify", "--model", CLI.fixture("tiny-pixart-512"), "--reference", dir + "/ref", "--json"])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.contains("\"psnr\":null"), "identical images: \(check.stdout)")
        // The fields that change a run are written back.
        try Data(#"[{"name": "fox", "prompt": "A+Red+Fox", "steps": 2, "height": 16, "width": 16, "clean_caption": true, "max_sequence_length": 60}]"#.utf8)
            .write(to: URL(fileURLWithPath: prompts))
        XCTAssertEqual(try CLI.run(["verify", "--record", dir + "/ref2", "--model", CLI.fixture("tiny-pixart-512"), "--prompts", prompts]).status, 0)
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ref2/cases.json"))) as? [String: Any])
        let fox = try XCTUnwrap((written["cases"] as? [[String: Any]])?.first)
        XCTAssertEqual(fox["clean_caption"] as? Bool, true)
        XCTAssertEqual(fox["max_sequence_length"] as? Int, 60)
        XCTAssertNil(fox["resolution_binning"])
        XCTAssertEqual(try CLI.run(["verify", "--model", CLI.fixture("tiny-pixart-512"), "--reference", dir + "/ref2"]).status, 0)
    }

    func testVerifyUnusableBundlesExitTwoNamingTheCase() throws {
        let dir = try CLI.temporaryDirectory()
        func bundle(_ name: String, _ json: String, image: (String, Int, Int)? = nil) throws -> String {
            let folder = dir + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(json.utf8).write(to: URL(fileURLWithPath: folder + "/cases.json"))
            if let (file, w, h) = image {
                try PNGImage.write(path: folder + "/" + file, rgb: [UInt8](repeating: 9, count: w * h * 3), width: w, height: h)
            }
            return folder
        }
        let one = #"{"cases": [{"name": "c1", "prompt": "p", "height": 16, "width": 16, "image": "c1.png"%@}]}"#
        let cases: [(String, String, (String, Int, Int)?, String)] = [
            ("missing-image", String(format: one, ""), nil, "c1"),
            ("wrong-size", String(format: one, ""), ("c1.png", 8, 8), "c1"),
            ("bad-scheduler", String(format: one, #", "scheduler": "plms""#), ("c1.png", 16, 16), "c1"),
            ("incomplete", #"{"cases": [{"name": "c2", "height": 16, "width": 16, "image": "c2.png"}]}"#, nil, "c2"),
            ("malformed", #"{"cases": [ {"name": "c3""#, nil, "cases.json"),
        ]
        for (name, json, image, mention) in cases {
            let folder = try bundle(name, json, image: image)
            let result = try CLI.run(["verify", "--model", CLI.fixture("tiny-pixart-512"), "--reference", folder])
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(mention), "\(name): \(result.stderr)")
        }
    }

    func testIntegrityCatchesDamage() throws {
        let dir = try CLI.temporaryDirectory()
        let store = dir + "/t.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "q4_0"]).status, 0)
        XCTAssertEqual(try CLI.run(["verify", "--model", store]).status, 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: store))
        // Flip one byte near the end: tensor data of the last tensor.
        bytes[bytes.count - 70] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: dir + "/flipped.gguf"))
        let flipped = try CLI.run(["verify", "--model", dir + "/flipped.gguf", "--json"])
        XCTAssertEqual(flipped.status, 1, flipped.stdout)
        XCTAssertTrue(flipped.stdout.contains("damaged_tensor"), flipped.stdout)
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/truncated.gguf"))
        let truncated = try CLI.run(["verify", "--model", dir + "/truncated.gguf"])
        XCTAssertEqual(truncated.status, 1)
        XCTAssertTrue(truncated.stdout.contains("DAMAGED"), truncated.stdout)
    }
}
