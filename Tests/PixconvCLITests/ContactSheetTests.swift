import Foundation
import PixconvImage
import XCTest

/// `pixconv generate --prompts FILE`: one image per prompt, tiled into one PNG.
final class ContactSheetTests: XCTestCase {
    func testSheetTilesTheImagesOfSingleRuns() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prompts = ["a red circle on a blue background", "a green square on a white background", "a yellow triangle on a black background"]
        try Data((prompts[0] + "\n" + prompts[1] + "\n\n  " + prompts[2] + "  \n").utf8).write(to: URL(fileURLWithPath: dir + "/p.txt"))
        let model = CLI.fixture("demo-pixart")
        let sheet = try CLI.run(["generate", "--model", model, "--prompts", dir + "/p.txt", "--columns", "2", "--seed", "3",
                                 "--steps", "6", "-o", dir + "/sheet.png"])
        XCTAssertEqual(sheet.status, 0, sheet.stderr)
        let png = try PNGImage.read(path: dir + "/sheet.png")
        // 3 tiles of 64×64, 2 per row, 2 white pixels around and between them.
        XCTAssertEqual([png.width, png.height], [2 * 66 + 2, 2 * 66 + 2])
        func tile(_ k: Int) -> [UInt8] {
            let x0 = 2 + (k % 2) * 66, y0 = 2 + (k / 2) * 66
            var out: [UInt8] = []
            for y in y0..<(y0 + 64) { out += png.rgb[((y * png.width + x0) * 3)..<((y * png.width + x0 + 64) * 3)] }
            return out
        }
        for (k, prompt) in prompts.enumerated() {
            let single = try CLI.run(["generate", "--model", model, "--prompt", prompt, "--seed", "3", "--steps", "6", "-o", dir + "/\(k).png"])
            XCTAssertEqual(single.status, 0, single.stderr)
            XCTAssertEqual(tile(k), try PNGImage.read(path: dir + "/\(k).png").rgb, "tile \(k) is the image of \(prompt)")
        }
        XCTAssertEqual(Set(tile(3)), [255], "the empty fourth place is white")
        XCTAssertEqual(Set(png.rgb[0..<(png.width * 2 * 3)]), [255], "white top border")
        let text = Dictionary(try PNGImage.readText(path: dir + "/sheet.png").map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(text["prompts"], prompts.joined(separator: "\n"))
        XCTAssertEqual(text["seed"], "3")
    }

    func testUsageErrors() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("an owl\n".utf8).write(to: URL(fileURLWithPath: dir + "/p.txt"))
        try Data("\n \n".utf8).write(to: URL(fileURLWithPath: dir + "/empty.txt"))
        let model = CLI.fixture("tiny-pixart-512")
        for (args, message) in [
            (["--prompt", "x", "--prompts", dir + "/p.txt"], "--prompt TEXT or --prompts FILE"),
            ([String](), "--prompt TEXT or --prompts FILE"),
            (["--prompts", dir + "/p.txt", "--count", "2"], "--count does not go with --prompts"),
            (["--prompts", dir + "/p.txt", "--columns", "0"], "--columns"),
            (["--prompts", dir + "/empty.txt"], "needs 1 to 4096 prompts"),
            (["--prompts", dir + "/missing.txt"], "cannot read --prompts"),
        ] {
            let r = try CLI.run(["generate", "--model", model, "-o", dir + "/s.png"] + args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s.png"))
        }
    }
}
