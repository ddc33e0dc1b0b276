import Foundation
import PixconvImage
import XCTest

/// `pixconv generate --init-image` end to end against fixtures/img2img (diffusers' parts composed as
/// its img2img pipeline, scripts/make_img2img_reference.py), from the pipeline folder and from a store.
final class Img2ImgCommandTests: XCTestCase {
    private struct Case: Decodable {
        let name: String, prompt: String, negative_prompt: String, seed: Int, steps: Int, strength: Double
        let guidance_scale: Double, scheduler: String, height: Int, width: Int, size_given: Bool
        let init_image: String, image: String
    }

    private func cases() throws -> [Case] {
        struct Doc: Decodable { let cases: [Case] }
        return try JSONDecoder().decode(Doc.self, from: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("img2img/cases.json")))).cases
    }

    /// `initImage`: the init PNG's path (default: the case's image in fixtures/img2img).
    private func arguments(_ c: Case, model: String, out: String, initImage: String? = nil) -> [String] {
        var args = ["generate", "--model", model, "--prompt", c.prompt, "--negative-prompt", c.negative_prompt,
                    "--seed", String(c.seed), "--steps", String(c.steps), "--guidance-scale", String(c.guidance_scale),
                    "--scheduler", c.scheduler, "--init-image", initImage ?? CLI.fixture("img2img/" + c.init_image),
                    "--strength", String(c.strength), "-o", out]
        if c.size_given { args += ["--width", String(c.width), "--height", String(c.height)] }
        return args
    }

    /// Every case: the init PNG (RGB as is, RGBA resized, grey with its width rounded down) read,
    /// resized and encoded by pixconv gives diffusers' image.
    func testInitImageCasesMatchDiffusers() throws {
        let dir = try CLI.temporaryDirectory()
        for c in try cases() {
            let out = dir + "/\(c.name).png"
            let result = try CLI.run(arguments(c, model: CLI.fixture("tiny-pixart-512"), out: out) + ["--json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let image = try PNGImage.read(path: out)
            let reference = try PNGImage.read(path: CLI.fixture("img2img/" + c.image))
            XCTAssertEqual([image.width, image.height], [c.width, c.height], c.name)
            let psnr = try ImageMetrics.psnr(reference.rgb, image.rgb)
            print("generate --init-image \(c.name): PSNR \(psnr) dB (uint8)")
            XCTAssertGreaterThanOrEqual(psnr, 50, c.name)
            let text = Dictionary(try PNGImage.readText(path: out).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(text["init_image"], c.init_image)
            XCTAssertEqual(text["strength"], String(c.strength))
            let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let steps = try XCTUnwrap(summary["step_seconds"] as? [Double])
            XCTAssertEqual(steps.count, Int(Double(c.steps) * c.strength), "int(steps · strength) steps run")
            XCTAssertNotNil(summary["vae_encode_seconds"] as? Double)
        }
    }

    /// Conversion keeps the VAE encoder: img2img from an f32 store gives the same image.
    func testInitImageFromStore() throws {
        let dir = try CLI.temporaryDirectory()
        let store = dir + "/tiny.f32.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", store, "--type", "f32"]).status, 0)
        let c = try XCTUnwrap(try cases().first)
        let out = dir + "/store.png"
        let result = try CLI.run(arguments(c, model: store, out: out))
        XCTAssertEqual(result.status, 0, result.stderr)
        let reference = try PNGImage.read(path: CLI.fixture("img2img/" + c.image))
        XCTAssertGreaterThanOrEqual(try ImageMetrics.psnr(reference.rgb, try PNGImage.read(path: out).rgb), 50)
    }

    /// Bad init images and strengths: exit 1, one line naming the file (or option), nothing written.
    func testBadInitImageAndStrength() throws {
        let dir = try CLI.temporaryDirectory()
        let good = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("img2img/fox-dpm-init.png")))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir + "/truncated.png"))
        try Data("GIF89a not a png".utf8).write(to: URL(fileURLWithPath: dir + "/fake.png"))
        var corrupt = [UInt8](good)
        corrupt[40] ^= 0xFF  // inside IHDR/IDAT: a CRC mismatch
        try Data(corrupt).write(to: URL(fileURLWithPath: dir + "/crc.png"))
        let model = CLI.fixture("tiny-pixart-512")
        let odd = CLI.fixture("img2img/lake-ddim-nocfg-init.png")  // 17 × 16 grey (→ 16 × 16)
        // 18 × 18: its default size (rounded down to the VAE factor 2) is not a multiple of 8.
        try PNGImage.write(path: dir + "/18.png", rgb: [UInt8](repeating: 128, count: 18 * 18 * 3), width: 18, height: 18)
        let cases: [(args: [String], mentions: String)] = [
            (["--init-image", dir + "/truncated.png"], dir + "/truncated.png"),
            (["--init-image", dir + "/fake.png"], dir + "/fake.png"),
            (["--init-image", dir + "/crc.png"], dir + "/crc.png"),
            (["--init-image", dir + "/missing.png"], dir + "/missing.png"),
            (["--init-image", dir + "/18.png"], dir + "/18.png"),
            (["--init-image", odd, "--strength", "0"], "--strength"),
            (["--init-image", odd, "--strength", "1.5"], "--strength"),
            (["--init-image", odd, "--strength", "0.04"], "no denoising step"),  // int(20 · 0.04) = 0,
        ]
        for (extra, mention) in cases {
            let out = dir + "/out.png"
            let result = try CLI.run(["generate", "--model", model, "--prompt", "x", "-o", out] + extra)
            XCTAssertEqual(result.status, 1, "\(extra): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(mention), "\(extra): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(extra)")
        }
        // --strength without --init-image is a usage error.
        let usage = try CLI.run(["generate", "--model", model, "--prompt", "x", "--strength", "0.5", "-o", dir + "/u.png"])
        XCTAssertEqual(usage.status, 2, usage.stderr)
    }

    /// `pixconv generate --init-image PNG --vae-tiling` tiles the encode and the decode: its PNG is
    /// diffusers' with `enable_tiling()` (fixtures/vae/tiled-encode,
    /// scripts/make_vae_tiled_encode_reference.py), and not diffusers' with only the decode tiled.
    func testVAETilingTilesTheEncode() throws {
        struct Doc: Decodable { let model: String, cases: [Case], decode_only_image: String }
        let fixture = { (name: String) in CLI.fixture("vae/tiled-encode/" + name) }
        let all = try JSONDecoder().decode(Doc.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("cases.json"))))
        let c = try XCTUnwrap(all.cases.first)
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.png"
        let result = try CLI.run(arguments(c, model: CLI.fixture(all.model), out: out, initImage: fixture(c.init_image))
                                 + ["--vae-tiling", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(summary["vae_tiled"] as? Bool, true)
        XCTAssertEqual(summary["vae_encode_tiled"] as? Bool, true)
        let image = try PNGImage.read(path: out)
        XCTAssertEqual([image.width, image.height], [c.width, c.height])
        let reference = try PNGImage.read(path: fixture(c.image))
        let decodeOnly = try PNGImage.read(path: fixture(all.decode_only_image))
        let psnr = try ImageMetrics.psnr(reference.rgb, image.rgb)
        let psnrDecodeOnly = try ImageMetrics.psnr(decodeOnly.rgb, image.rgb)
        print("generate --init-image --vae-tiling: PSNR \(psnr) dB against diffusers (both tiled), "
              + "\(psnrDecodeOnly) dB against diffusers with only the decode tiled")
        XCTAssertGreaterThanOrEqual(psnr, 50)
        XCTAssertLessThan(psnrDecodeOnly, psnr - 5, "the encode must have run in tiles")
    }
}
