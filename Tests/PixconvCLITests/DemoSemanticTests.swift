import Foundation
import PixconvImage
import XCTest

/// Does the bundled demo model (fixtures/demo-pixart, trained by scripts/train_demo.py) draw what
/// its prompts say, from every store type? Independent of diffusers at run time: each image is
/// checked by a fixed rule (`DemoSemantics.score`) — the border has the prompted background colour,
/// the foreground the prompted shape colour, and the foreground mask is closer (IoU) to the prompted
/// shape, drawn with the mask's area and centroid, than to the other shapes.
///
/// fixtures/demo-semantic/cases.json (scripts/make_demo_reference.py) holds the 36 prompts, the
/// images diffusers generates for them from the f32 folder, and the rule's verdict on those images as
/// the Python copy of the rule (`score_image` in scripts/train_demo.py) gives it.
final class DemoSemanticTests: XCTestCase {
    /// Pass rate that f16, bf16 and q8_0 stores may lose against the f32 store: 5 points, i.e. one
    /// prompt of 36 (2.8 points) but not two (5.6).
    static let margin = 0.05
    /// The issue's target for the f32 store.
    static let f32Target = 0.90

    struct Bundle: Decodable {
        var passRate: Double
        var cases: [Case]
        enum CodingKeys: String, CodingKey { case cases; case passRate = "pass_rate" }
    }

    struct Case: Decodable {
        var name, prompt, image: String
        var seed, steps, height, width: Int
        var guidanceScale: Double
        var shape, colour, background: String
        var semantic: Verdict
        enum CodingKeys: String, CodingKey {
            case name, prompt, image, seed, steps, height, width, shape, colour, background, semantic
            case guidanceScale = "guidance_scale"
        }
    }

    struct Verdict: Decodable {
        var background: String
        var colour: String?
        var shape: String?
        var pass: Bool
    }

    static func bundle() throws -> Bundle {
        let data = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("demo-semantic/cases.json")))
        return try JSONDecoder().decode(Bundle.self, from: data)
    }

    /// The Swift rule gives the Python rule's verdict on diffusers' own images.
    func testRuleAgreesWithPythonOnDiffusersImages() throws {
        let bundle = try Self.bundle()
        XCTAssertGreaterThanOrEqual(bundle.cases.count, 24)
        var passes = 0
        for c in bundle.cases {
            let image = try PNGImage.read(path: CLI.fixture("demo-semantic/" + c.image))
            let s = DemoSemantics.score(rgb: image.rgb, width: image.width, height: image.height)
            XCTAssertEqual(s.background, c.semantic.background, c.name)
            XCTAssertEqual(s.colour, c.semantic.colour, c.name)
            XCTAssertEqual(s.shape, c.semantic.shape, c.name)
            passes += s.matches(shape: c.shape, colour: c.colour, background: c.background) ? 1 : 0
        }
        XCTAssertEqual(Double(passes) / Double(bundle.cases.count), bundle.passRate, accuracy: 1e-9)
        // The rule is not vacuous: it rejects a prompt the image does not show.
        let first = try XCTUnwrap(bundle.cases.first { $0.semantic.pass })
        let image = try PNGImage.read(path: CLI.fixture("demo-semantic/" + first.image))
        let s = DemoSemantics.score(rgb: image.rgb, width: image.width, height: image.height)
        let otherShape = DemoSemantics.shapes.first { $0 != first.shape }!
        XCTAssertFalse(s.matches(shape: otherShape, colour: first.colour, background: first.background))
        XCTAssertFalse(s.matches(shape: first.shape, colour: first.background, background: first.colour))
    }

    /// The rule on drawn shapes (no model): each shape is told apart from the other two.
    func testRuleOnDrawnShapes() {
        for (k, shape) in DemoSemantics.shapes.enumerated() {
            let fg = DemoSemantics.palette[k].rgb, bg = DemoSemantics.palette[(k + 2) % 6].rgb
            var rgb = [UInt8](repeating: 0, count: 64 * 64 * 3)
            let mask = DemoSemantics.mask(shape: shape, cx: 30.5, cy: 34, r: 12, width: 64, height: 64)
            for i in 0..<(64 * 64) {
                for ch in 0..<3 { rgb[i * 3 + ch] = UInt8(mask[i] ? fg[ch] : bg[ch]) }
            }
            let s = DemoSemantics.score(rgb: rgb, width: 64, height: 64)
            XCTAssertEqual(s.shape, shape)
            XCTAssertEqual(s.colour, DemoSemantics.palette[k].name)
            XCTAssertEqual(s.background, DemoSemantics.palette[(k + 2) % 6].name)
        }
    }

    /// Every store type generates the 36 prompts; f32 reaches the target, f16/bf16/q8_0 stay within
    /// the margin of f32, q4_0 is reported.
    func testPassRatePerStoreType() throws {
        let bundle = try Self.bundle()
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The cases without their images: a prompts file for `verify --record`.
        let prompts = bundle.cases.map { c -> [String: Any] in
            ["name": c.name, "prompt": c.prompt, "seed": c.seed, "steps": c.steps, "guidance_scale": c.guidanceScale,
             "height": c.height, "width": c.width]
        }
        try JSONSerialization.data(withJSONObject: prompts).write(to: URL(fileURLWithPath: dir + "/prompts.json"))
        var rates: [String: Double] = [:]
        var lines: [String] = []
        for type in ["f32", "f16", "bf16", "q8_0", "q4_0"] {
            let store = dir + "/demo.\(type).gguf"
            let convert = try CLI.run(["convert", CLI.fixture("demo-pixart"), "-o", store, "--type", type])
            XCTAssertEqual(convert.status, 0, convert.stderr)
            let record = try CLI.run(["verify", "--record", dir + "/" + type, "--model", store, "--prompts", dir + "/prompts.json"])
            XCTAssertEqual(record.status, 0, record.stderr)
            var passes = 0
            var misses: [String] = []
            for c in bundle.cases {
                let image = try PNGImage.read(path: dir + "/\(type)/\(c.name).png")
                let s = DemoSemantics.score(rgb: image.rgb, width: image.width, height: image.height)
                if s.matches(shape: c.shape, colour: c.colour, background: c.background) {
                    passes += 1
                } else {
                    misses.append("\(c.name) → \(s.colour ?? "-") \(s.shape ?? "-") on \(s.background)")
                }
            }
            rates[type] = Double(passes) / Double(bundle.cases.count)
            lines.append(String(format: "%@: %d/%d = %.1f %%", type, passes, bundle.cases.count, 100 * rates[type]!)
                + (misses.isEmpty ? "" : "; misses: " + misses.joined(separator: ", ")))
        }
        let report = "demo semantic pass rates (diffusers f32: \(String(format: "%.1f", 100 * bundle.passRate)) %)\n"
            + lines.joined(separator: "\n")
        print(report)
        let f32 = try XCTUnwrap(rates["f32"])
        XCTAssertGreaterThanOrEqual(f32, Self.f32Target, report)
        for type in ["f16", "bf16", "q8_0"] {
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(rates[type]), f32 - Self.margin - 1e-9, "\(type)\n" + report)
        }
    }
}

/// The semantic rule of `score_image` in scripts/train_demo.py, for the demo model's palette and shapes.
enum DemoSemantics {
    static let palette: [(name: String, rgb: [Double])] = [
        ("red", [220, 40, 40]), ("green", [40, 170, 60]), ("blue", [40, 80, 220]),
        ("yellow", [240, 215, 40]), ("white", [240, 240, 240]), ("black", [25, 25, 25]),
    ]
    static let shapes = ["circle", "square", "triangle"]

    struct Score {
        var background: String
        var colour: String?
        var shape: String?
        var iou: [String: Double]

        func matches(shape: String, colour: String, background: String) -> Bool {
            self.background == background && self.colour == colour && self.shape == shape
        }
    }

    static func nearest(_ rgb: [Double]) -> String {
        var best = palette[0].name, bestD = Double.infinity
        for p in palette {
            let d = zip(p.rgb, rgb).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            if d < bestD { best = p.name; bestD = d }
        }
        return best
    }

    /// numpy's median: the middle value, or the mean of the two middle values.
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// Pixels whose centre lies in the shape (centroid (cx, cy), the area of a circle of radius r).
    static func mask(shape: String, cx: Double, cy: Double, r: Double, width: Int, height: Int) -> [Bool] {
        var m = [Bool](repeating: false, count: width * height)
        let h = r * Double.pi.squareRoot() / 2
        let rr = r * (4 * Double.pi / (3 * 3.0.squareRoot())).squareRoot()
        let v = [0.0, 2 * Double.pi / 3, 4 * Double.pi / 3].map { (cx + rr * sin($0), cy - rr * cos($0)) }
        for i in 0..<height {
            let y = Double(i) + 0.5
            for j in 0..<width {
                let x = Double(j) + 0.5
                var inside: Bool
                switch shape {
                case "circle": inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
                case "square": inside = abs(x - cx) <= h && abs(y - cy) <= h
                default:
                    inside = true
                    for k in 0..<3 {
                        let (x0, y0) = v[k], (x1, y1) = v[(k + 1) % 3]
                        if (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) < 0 { inside = false }
                    }
                }
                m[i * width + j] = inside
            }
        }
        return m
    }

    /// Border: per-channel median of the 2-pixel frame, nearest palette colour. Foreground: pixels
    /// farther than 80 (RGB distance) from the border colour, per-channel median, nearest palette
    /// colour. Shape: the best IoU of the foreground with each shape of the same area and centroid
    /// (none below 16 foreground pixels).
    static func score(rgb: [UInt8], width w: Int, height h: Int) -> Score {
        func px(_ i: Int, _ j: Int) -> [Double] { (0..<3).map { Double(rgb[(i * w + j) * 3 + $0]) } }
        var frame: [[Double]] = []
        for i in [0, 1, h - 2, h - 1] { for j in 0..<w { frame.append(px(i, j)) } }
        for i in 2..<(h - 2) { for j in [0, 1, w - 2, w - 1] { frame.append(px(i, j)) } }
        let border = (0..<3).map { ch in median(frame.map { $0[ch] }) }
        var fg = [Bool](repeating: false, count: w * h)
        var fgPixels: [[Double]] = []
        var sx = 0.0, sy = 0.0
        for i in 0..<h {
            for j in 0..<w {
                let p = px(i, j)
                let d = zip(p, border).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                if d > 80 {
                    fg[i * w + j] = true
                    fgPixels.append(p)
                    sx += Double(j)
                    sy += Double(i)
                }
            }
        }
        var score = Score(background: nearest(border), colour: nil, shape: nil, iou: [:])
        let area = fgPixels.count
        guard area >= 16 else { return score }
        score.colour = nearest((0..<3).map { ch in median(fgPixels.map { $0[ch] }) })
        let cx = sx / Double(area) + 0.5, cy = sy / Double(area) + 0.5
        let r = (Double(area) / Double.pi).squareRoot()
        var best: (String, Double)? = nil
        for s in shapes {
            let m = mask(shape: s, cx: cx, cy: cy, r: r, width: w, height: h)
            var inter = 0, union = 0
            for k in 0..<(w * h) {
                if m[k] && fg[k] { inter += 1 }
                if m[k] || fg[k] { union += 1 }
            }
            let iou = Double(inter) / Double(max(union, 1))
            score.iou[s] = iou
            if best == nil || iou > best!.1 { best = (s, iou) }
        }
        score.shape = best?.0
        return score
    }
}
