import Foundation
import PixconvImage
import XCTest

/// `generate --scheduler lcm|ddpm`, `--timesteps`, the model's default scheduler and `verify` on the
/// few-step bundles (fixtures/reference-lcm, reference-dmd: scripts/make_fewstep_reference.py).
final class FewStepCommandTests: XCTestCase {
    private func f32Store(_ dir: String) throws -> String {
        let store = dir + "/t.f32.gguf"
        let converted = try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "f32"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        return store
    }

    func testVerifyFewStepBundlesFromAnF32Store() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try f32Store(dir)
        for (bundle, folder, count) in [("reference-lcm", "tiny-pixart-lcm", 4), ("reference-dmd", "tiny-pixart-dmd", 4)] {
            let result = try CLI.run(["verify", "--model", store, "--model", CLI.fixture(folder), "--reference", CLI.fixture(bundle),
                                      "--min-psnr", "80", "--json"])
            XCTAssertEqual(result.status, 0, bundle + ": " + result.stderr)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let cases = try XCTUnwrap(report["cases"] as? [[String: Any]])
            XCTAssertEqual(cases.count, count, bundle)
            for c in cases {
                // psnr is null for identical images
                let psnr = c["psnr"] as? Double ?? .infinity
                print("verify \(bundle)/\(c["name"] ?? ""): PSNR \(psnr) dB (f32 store)")
                XCTAssertGreaterThanOrEqual(psnr, 80, "\(bundle) \(c)")
            }
        }
    }

    /// Without --scheduler the store + LCM folder runs LCM (the config's _class_name) and gives
    /// diffusers' PNG; the PNG names the scheduler; DMD-style --timesteps 400 gives diffusers' one-step image.
    func testDefaultSchedulerFromConfigAndTimesteps() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try f32Store(dir)
        let lcm = try CLI.run(["generate", "--model", store, "--model", CLI.fixture("tiny-pixart-lcm"),
                               "--prompt", "A small cactus with a happy face in the Sahara desert.", "--seed", "3",
                               "--steps", "4", "--guidance-scale", "0", "-o", dir + "/lcm.png"])
        XCTAssertEqual(lcm.status, 0, lcm.stderr)
        XCTAssertEqual(try PNGImage.read(path: dir + "/lcm.png").rgb, try PNGImage.read(path: CLI.fixture("reference-lcm/lcm-4step.png")).rgb)
        let text = try PNGImage.readText(path: dir + "/lcm.png")
        XCTAssertTrue(text.contains { $0.key == "scheduler" && $0.value == "lcm" }, "\(text)")
        // The same seed with the store's own scheduler (DPM-Solver++) is another image.
        let dpm = try CLI.run(["generate", "--model", store, "--prompt", "A small cactus with a happy face in the Sahara desert.",
                               "--seed", "3", "--steps", "4", "--guidance-scale", "0", "-o", dir + "/dpm.png"])
        XCTAssertEqual(dpm.status, 0, dpm.stderr)
        XCTAssertNotEqual(try PNGImage.read(path: dir + "/dpm.png").rgb, try PNGImage.read(path: dir + "/lcm.png").rgb)

        let dmd = try CLI.run(["generate", "--model", store, "--model", CLI.fixture("tiny-pixart-dmd"),
                               "--prompt", "A small cactus with a happy face in the Sahara desert.", "--seed", "3",
                               "--scheduler", "ddpm", "--timesteps", "400", "--guidance-scale", "1", "-o", dir + "/dmd.png"])
        XCTAssertEqual(dmd.status, 0, dmd.stderr)
        XCTAssertEqual(try PNGImage.read(path: dir + "/dmd.png").rgb, try PNGImage.read(path: CLI.fixture("reference-dmd/dmd-1step.png")).rgb)
        let dmdText = try PNGImage.readText(path: dir + "/dmd.png")
        XCTAssertTrue(dmdText.contains { $0.key == "timesteps" && $0.value == "400" }, "\(dmdText)")
        XCTAssertTrue(dmdText.contains { $0.key == "steps" && $0.value == "1" }, "\(dmdText)")
    }

    func testSchedulerAndTimestepErrors() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = CLI.fixture("tiny-pixart-512")
        let unknown = try CLI.run(["generate", "--model", model, "--prompt", "x", "--scheduler", "lms", "-o", dir + "/x.png"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("dpm++2m, ddim, euler, lcm or ddpm"), unknown.stderr)
        let ddim = try CLI.run(["generate", "--model", model, "--prompt", "x", "--scheduler", "ddim", "--timesteps", "400", "-o", dir + "/x.png"])
        XCTAssertNotEqual(ddim.status, 0)
        XCTAssertTrue(ddim.stderr.contains("DDIMScheduler"), ddim.stderr)
        for bad in ["5,9", "400,x", "", "-3"] {
            let r = try CLI.run(["generate", "--model", model, "--prompt", "x", "--scheduler", "ddpm", "--timesteps=\(bad)", "-o", dir + "/x.png"])
            XCTAssertEqual(r.status, 2, "\(bad): \(r.stderr)")  // usage error
        }
        // A scheduler folder naming a class pixconv lacks: the error names it and --scheduler.
        let odd = dir + "/odd"
        try FileManager.default.createDirectory(atPath: odd + "/scheduler", withIntermediateDirectories: true)
        try Data(#"{"_class_name": "PixArtAlphaPipeline", "scheduler": ["diffusers", "UniPCMultistepScheduler"]}"#.utf8)
            .write(to: URL(fileURLWithPath: odd + "/model_index.json"))
        try Data(#"{"_class_name": "UniPCMultistepScheduler", "num_train_timesteps": 1000}"#.utf8)
            .write(to: URL(fileURLWithPath: odd + "/scheduler/scheduler_config.json"))
        let r = try CLI.run(["generate", "--model", model, "--model", odd, "--prompt", "x", "-o", dir + "/x.png"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("UniPCMultistepScheduler") && r.stderr.contains("--scheduler"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.png"))
        // With --scheduler the same models run.
        let named = try CLI.run(["generate", "--model", model, "--model", odd, "--prompt", "x", "--scheduler", "euler",
                                 "--steps", "2", "-o", dir + "/x.png"])
        XCTAssertEqual(named.status, 0, named.stderr)
        XCTAssertTrue(try CLI.run(["generate", "--help"]).stdout.contains("--timesteps 400"))
    }
}
