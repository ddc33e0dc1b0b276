import Foundation
import PixconvImage
import PixconvReaders
import XCTest

/// The model family: `convert` records it (detected or `--family`), `inspect` shows it and its
/// defaults, and a PixArt-Σ checkpoint in the original layout converts as diffusers' Σ script does.
final class FamilyCommandTests: XCTestCase {
    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func testConvertRecordsTheDetectedFamilyAndInspectShowsItsDefaults() throws {
        let dir = try CLI.temporaryDirectory()
        for (model, family, name, reason, tokens) in [
            ("tiny-pixart-sigma-512", "pixart-sigma", "pixart-sigma-512", "PixArtSigmaPipeline", 300),
            ("tiny-pixart-sigma-2k", "pixart-sigma", "pixart-sigma-2048", "PixArtSigmaPipeline", 300),
            ("tiny-pixart-512", "pixart-alpha", "pixart-alpha", "PixArtAlphaPipeline", 120),
        ] {
            let out = dir + "/\(model).gguf"
            let convert = try CLI.run(["convert", CLI.fixture(model), "-o", out, "--type", "q8_0", "--json"])
            XCTAssertEqual(convert.status, 0, convert.stderr)
            let summary = try json(convert.stdout)
            XCTAssertEqual(summary["family"] as? String, family, model)
            XCTAssertTrue((summary["family_reason"] as? String ?? "").contains(reason), model)
            let inspect = try CLI.run(["inspect", out, "--json"])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            let report = try XCTUnwrap(try json(inspect.stdout)["family"] as? [String: Any], model)
            XCTAssertEqual(report["family"] as? String, family, model)
            XCTAssertEqual(report["name"] as? String, name, model)
            XCTAssertEqual(report["text_length"] as? Int, tokens, model)
            XCTAssertEqual(report["steps"] as? Int, 20, model)
            let text = try CLI.run(["inspect", out])
            XCTAssertTrue(text.stdout.contains("family: \(name)"), text.stdout)
            XCTAssertTrue(text.stdout.contains("\(tokens) text tokens"), text.stdout)
        }
    }

    /// diffusers' Σ script converts with sample_size 1024 // 8, interpolation_scale 2 and no
    /// micro-conditions; the .pth records neither its size nor its family.
    func testSigmaOriginalCheckpointNeedsFamilyAndEqualsDiffusersConversion() throws {
        let dir = try CLI.temporaryDirectory()
        let pth = CLI.fixture("sigma/PixArt-Sigma-tiny-1024-MS.pth")
        let bare = try CLI.run(["convert", pth, "-o", dir + "/bare.gguf"])
        XCTAssertNotEqual(bare.status, 0)
        XCTAssertTrue(bare.stderr.contains("pos_embed") && bare.stderr.contains("--family sigma-1024"), bare.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bare.gguf"))

        let out = dir + "/sigma.safetensors"
        let result = try CLI.run(["convert", pth, "--family", "sigma-1024", "-o", out, "--format", "safetensors", "--type", "f32"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let mine = try SafetensorsFile(path: out)
        let official = try SafetensorsFile(path: CLI.fixture("sigma/converted-1024/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(mine.tensors.map(\.name), official.tensors.map(\.name))
        for info in official.tensors {
            let a = try mine.data(for: info.name), b = try official.data(for: info.name)
            XCTAssertEqual(a.info.shape, b.info.shape, info.name)
            XCTAssertTrue(a.bytes.elementsEqual(b.bytes), "\(info.name) differs")
        }
        // The config that goes with it, as a store records it.
        let store = dir + "/sigma.gguf"
        XCTAssertEqual(try CLI.run(["convert", pth, "--family", "sigma-1024", "-o", store, "--type", "f32"]).status, 0)
        let inspect = try json(try CLI.run(["inspect", store, "--json"]).stdout)
        let parts = try XCTUnwrap(inspect["components"] as? [[String: Any]])
        let configText = try XCTUnwrap(parts.first { $0["name"] as? String == "transformer" }?["config"] as? String)
        let config = try json(configText)
        let want = try json(try String(contentsOfFile: CLI.fixture("sigma/converted-1024/config.json"), encoding: .utf8))
        for key in ["sample_size", "interpolation_scale", "use_additional_conditions", "num_layers", "caption_channels",
                    "attention_head_dim", "num_attention_heads", "out_channels", "patch_size"] {
            XCTAssertEqual(config[key] as? NSObject, want[key] as? NSObject, key)
        }
        let family = try XCTUnwrap(inspect["family"] as? [String: Any])
        XCTAssertEqual(family["name"] as? String, "pixart-sigma-1024")
        XCTAssertEqual(family["reason"] as? String, "--family pixart-sigma-1024")
    }

    func testFamilyMistakesAreClearErrors() throws {
        let dir = try CLI.temporaryDirectory()
        let unknown = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", dir + "/a.gguf", "--family", "gamma"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("unknown --family 'gamma'"), unknown.stderr)
        // A size that contradicts the config.
        let size = try CLI.run(["convert", CLI.fixture("tiny-pixart-sigma-1024"), "-o", dir + "/b.gguf", "--family", "sigma-512"])
        XCTAssertNotEqual(size.status, 0)
        XCTAssertTrue(size.stderr.contains("sample_size 64") && size.stderr.contains("128"), size.stderr)
        // A family needs a transformer.
        let te = try CLI.run(["convert", CLI.fixture("tiny-pixart-512/text_encoder"), "-o", dir + "/c.gguf", "--family", "sigma"])
        XCTAssertNotEqual(te.status, 0)
        XCTAssertTrue(te.stderr.contains("needs a transformer"), te.stderr)
        for name in ["a", "b", "c"] { XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/\(name).gguf")) }
    }

    /// --family overrides detection; exported as diffusers, a Σ pipeline is a PixArtSigmaPipeline.
    func testFamilyOverrideAndSigmaExport() throws {
        let dir = try CLI.temporaryDirectory()
        let store = dir + "/as-sigma.gguf"
        let convert = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--family", "sigma", "--json"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertEqual(try json(convert.stdout)["family"] as? String, "pixart-sigma")
        let export = dir + "/sigma-folder"
        let result = try CLI.run(["convert", CLI.fixture("tiny-pixart-sigma-512"), "-o", export, "--format", "safetensors", "--type", "f32"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let index = try json(try String(contentsOfFile: export + "/model_index.json", encoding: .utf8))
        XCTAssertEqual(index["_class_name"] as? String, "PixArtSigmaPipeline")
        // A store read back keeps its family: converting it again records the same one.
        let again = try CLI.run(["convert", store, "-o", dir + "/again.gguf", "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try json(again.stdout)["family"] as? String, "pixart-sigma")
    }

    /// generate takes the family's defaults: an LCM or DMD sampler folder given beside a model makes
    /// it that family, and without --steps, --guidance-scale or --timesteps the images are diffusers'
    /// of the authors' settings (LCM 4 steps, guidance 0; DMD ddpm at 400, guidance 1).
    func testGenerateTakesTheFamilyDefaults() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/tiny.f32.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "f32"]).status, 0)
        let prompt = "A small cactus with a happy face in the Sahara desert."
        for (sampler, reference, steps, guidance) in [("tiny-pixart-lcm", "reference-lcm/lcm-4step.png", "4", "0.0"),
                                                      ("tiny-pixart-dmd", "reference-dmd/dmd-1step.png", "1", "1.0")] {
            for model in [store, CLI.fixture("tiny-pixart-512")] {
                let out = dir + "/\(sampler).png"
                let result = try CLI.run(["generate", "--model", model, "--model", CLI.fixture(sampler), "--prompt", prompt,
                                          "--seed", "3", "-o", out, "--json"])
                XCTAssertEqual(result.status, 0, result.stderr)
                let summary = try json(result.stdout)
                XCTAssertEqual(summary["family"] as? String, sampler.hasSuffix("lcm") ? "pixart-lcm" : "pixart-dmd")
                XCTAssertEqual(summary["scheduler"] as? String, sampler.hasSuffix("lcm") ? "lcm" : "ddpm")
                XCTAssertEqual(summary["steps"] as? Int, Int(steps))
                XCTAssertEqual((summary["guidance_scale"] as? NSNumber)?.doubleValue, Double(guidance))
                XCTAssertEqual(summary["timesteps"] as? [Int], sampler.hasSuffix("lcm") ? nil : [400])
                XCTAssertEqual(try PNGImage.read(path: out).rgb, try PNGImage.read(path: CLI.fixture(reference)).rgb, "\(sampler) \(model)")
                let text = try PNGImage.readText(path: out)
                XCTAssertTrue(text.contains { $0.key == "steps" && $0.value == steps }, "\(text)")
                XCTAssertTrue(text.contains { $0.key == "guidance_scale" && $0.value == guidance }, "\(text)")
                XCTAssertTrue(text.contains { $0.key == "family" && $0.value == (sampler.hasSuffix("lcm") ? "pixart-lcm" : "pixart-dmd") }, "\(text)")
            }
        }
        // α's defaults: 20 steps, guidance 4.5, as diffusers; --family sigma changes the text length (and the image).
        let alpha = try CLI.run(["generate", "--model", store, "--prompt", prompt, "--seed", "0", "--height", "16", "--width", "16",
                                 "--no-clean-caption", "-o", dir + "/alpha.png"])
        XCTAssertEqual(alpha.status, 0, alpha.stderr)
        XCTAssertEqual(try PNGImage.read(path: dir + "/alpha.png").rgb, try PNGImage.read(path: CLI.fixture("reference-512/cactus-dpm.png")).rgb)
        let bad = try CLI.run(["generate", "--model", store, "--prompt", "x", "--family", "beta", "-o", dir + "/x.png"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown --family 'beta'"), bad.stderr)
    }
}
