import Foundation
import PixconvImage
import XCTest

/// `pixconv verify --report DIR`: the HTML page, its images, its order and figures, escaping, and
/// folders it cannot use (formats/verify.md, "Report").
final class VerifyReportTests: XCTestCase {
    // MARK: - HTML escaping

    func testEscapeTurnsMarkupIntoText() {
        XCTAssertEqual(HTMLText.escape(#"<b>&"'"#), "&lt;b&gt;&amp;&quot;&#39;")
        XCTAssertEqual(HTMLText.escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;")
        XCTAssertEqual(HTMLText.escape("&amp;"), "&amp;amp;", "an entity in the input is text, escaped again")
        XCTAssertEqual(HTMLText.escape(""), "")
        XCTAssertEqual(HTMLText.escape("a fox, café ∞ 🦊"), "a fox, café ∞ 🦊")
        XCTAssertEqual(HTMLText.escape("a\tb\nc\rd"), "a\tb\nc\rd", "tab, line feed and carriage return are allowed")
        XCTAssertEqual(HTMLText.escape("a\u{0}b\u{1b}[31mc\u{7f}\u{85}"), "a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}\u{FFFD}",
                       "controls HTML does not allow become U+FFFD")
        let nonCharacters = String(String.UnicodeScalarView([0xFFFF, 0xFDD0, 0x1FFFE].compactMap(Unicode.Scalar.init)))
        XCTAssertEqual(HTMLText.escape(nonCharacters), "\u{FFFD}\u{FFFD}\u{FFFD}", "noncharacters too")
    }

    // MARK: - The page

    /// Thresholds between the worst and best case: some cases fail, the rest pass. The page lists
    /// the failing ones first, every image it links is a PNG in DIR, and its figures are --json's.
    func testReportFailingCasesFirstWithItsImagesAndTheJSONFigures() throws {
        let dir = try CLI.temporaryDirectory()
        let store = try demoStore(in: dir)
        let bundle = CLI.fixture("reference-demo")
        let first = try CLI.run(["verify", "--model", store, "--reference", bundle, "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let psnrs = try cases(ofJSON: first.stdout).compactMap { $0["psnr"] as? Double }
        let (worst, best) = (try XCTUnwrap(psnrs.min()), try XCTUnwrap(psnrs.max()))
        XCTAssertLessThan(worst, best)
        let threshold = (worst + best) / 2

        let report = dir + "/report"
        let run = try CLI.run(["verify", "--model", store, "--reference", bundle, "--min-psnr", String(threshold), "--json",
                               "--report", report, "--save-diff", dir + "/diffs"])
        XCTAssertEqual(run.status, 1, "a failing case keeps exit status 1: \(run.stderr)")
        // JSONDecoder reads numbers exactly (JSONSerialization on Linux can be one unit off in the last place).
        let summary = try JSONDecoder().decode(Summary.self, from: Data(run.stdout.utf8))
        XCTAssertEqual(summary.report, report + "/index.html", "--report keeps stdout plain JSON and names the page")
        let json = summary.cases
        let html = try page(report)
        let sections = try Section.all(in: html)
        XCTAssertEqual(sections.count, json.count, "one section per case")

        // Failing cases first, each group in the bundle's order.
        let failing = json.filter { !$0.passed }.map(\.name)
        let passing = json.filter(\.passed).map(\.name)
        XCTAssertFalse(failing.isEmpty)
        XCTAssertFalse(passing.isEmpty)
        XCTAssertEqual(sections.map(\.name), failing + passing)
        XCTAssertEqual(sections.map(\.passed), failing.map { _ in false } + passing.map { _ in true })

        // The figures are the JSON's, exactly (data attributes) and as printed.
        for section in sections {
            let c = try XCTUnwrap(json.first { $0.name == section.name })
            let psnr = try XCTUnwrap(c.psnr, "a finite PSNR"), ssim = c.ssim
            XCTAssertEqual(section.psnr, psnr, section.name)
            XCTAssertEqual(section.ssim, ssim, section.name)
            XCTAssertEqual(section.maxDifference, c.max_difference, section.name)
            XCTAssertEqual(section.passed, c.passed, section.name)
            XCTAssertTrue(section.html.contains(String(format: "%.2f dB", psnr)), section.name)
            XCTAssertTrue(section.html.contains(String(format: "%.4f", ssim)), section.name)
            XCTAssertTrue(section.html.contains(section.passed ? ">pass<" : ">FAIL<"), section.name)
        }

        // Every src and href names a PNG in DIR; the three images of a case are the reference, the
        // generated image and the heat map (as --save-diff writes them), shown at least 256 wide.
        let links = try attributes(["src", "href"], in: html).filter { !$0.hasPrefix("#") }
        XCTAssertFalse(links.isEmpty)
        for link in links {
            XCTAssertFalse(link.contains("/") || link.contains(":"), "a relative link inside DIR: \(link)")
            XCTAssertNoThrow(try PNGImage.read(path: report + "/" + link), link)
        }
        for section in sections {
            let sources = try attributes(["src"], in: section.html)
            XCTAssertEqual(sources.count, 3, section.name)
            guard sources.count == 3 else { continue }
            let reference = try PNGImage.read(path: report + "/" + sources[0])
            XCTAssertEqual(reference.rgb, try PNGImage.read(path: bundle + "/" + section.name + ".png").rgb, section.name)
            XCTAssertEqual(try PNGImage.read(path: report + "/" + sources[1]).rgb,
                           try PNGImage.read(path: dir + "/diffs/" + section.name + ".generated.png").rgb, section.name)
            XCTAssertEqual(try PNGImage.read(path: report + "/" + sources[2]).rgb,
                           try PNGImage.read(path: dir + "/diffs/" + section.name + ".diff.png").rgb, section.name)
            for width in try attributes(["width"], in: section.html) {
                XCTAssertGreaterThanOrEqual(Int(width) ?? 0, 256, "a 64×64 image is shown scaled up")
            }
        }
        XCTAssertTrue(html.contains("image-rendering: pixelated"))

        // The header: verdict, store, weight type, thresholds, bundle, version, date; no scripts.
        XCTAssertTrue(html.contains("id=\"verdict\">FAIL<"), "verdict")
        XCTAssertTrue(html.contains(HTMLText.escape(store)))
        XCTAssertTrue(html.contains("id=\"weight-type\">q8_0<"))
        XCTAssertTrue(html.contains("data-min-psnr=\"\(threshold)\""), "the threshold given")
        XCTAssertTrue(html.contains("data-min-ssim=\"0.75\""), "q8_0's default SSIM threshold")
        XCTAssertTrue(html.contains(HTMLText.escape(bundle)))
        XCTAssertTrue(html.contains("<th>pixconv</th><td>"))
        XCTAssertNotNil(html.range(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, options: .regularExpression), "date")
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertEqual(leftovers(beside: report), [], "no staging folder left")

        // Run again into the same folder with the defaults: the previous report is replaced whole.
        let again = try CLI.run(["verify", "--model", store, "--reference", bundle, "--report", report + "/"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("report: \(report)/index.html"), again.stdout)
        let passed = try page(report)
        XCTAssertTrue(passed.contains("id=\"verdict\">PASS<"))
        XCTAssertTrue(try Section.all(in: passed).allSatisfy(\.passed))
        XCTAssertEqual(try Set(FileManager.default.contentsOfDirectory(atPath: report)),
                       Set(links + ["index.html"]), "the same files, nothing of the old report beside them")
        XCTAssertEqual(leftovers(beside: report), [])
    }

    /// Prompts, negative prompts and names from cases.json are text on the page, not markup.
    func testTextFromTheBundleIsEscaped() throws {
        let dir = try CLI.temporaryDirectory()
        let store = try demoStore(in: dir)
        let bundle = dir + "/bundle"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLI.fixture("reference-demo/red-circle-dpm.png"), toPath: bundle + "/red.png")
        let name = #"red<i>&"'"#
        let prompt = #"a red circle on a blue background <b>&"'"#
        let negative = "<script>alert(1)</script>"
        let cases: [String: Any] = ["generator": "test <u>bundle</u>", "cases": [
            ["name": name, "prompt": prompt, "negative_prompt": negative, "height": 64, "width": 64, "image": "red.png"],
        ]]
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: bundle + "/cases.json"))
        let report = dir + "/report"
        // A staging folder of a killed run is removed by the next run; one of a live process is kept.
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let stale = dir + "/.report.pixconv-\(finished.processIdentifier)-1.tmp", live = dir + "/.report.pixconv-\(getpid())-1.tmp"
        for folder in [stale, live] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data("half".utf8).write(to: URL(fileURLWithPath: folder + "/index.html"))
        }
        let run = try CLI.run(["verify", "--model", store, "--reference", bundle, "--report", report, "--min-psnr", "0", "--min-ssim", "0"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(leftovers(beside: report), [(live as NSString).lastPathComponent])
        try FileManager.default.removeItem(atPath: live)
        let html = try page(report)
        XCTAssertTrue(html.contains("a red circle on a blue background &lt;b&gt;&amp;&quot;&#39;"), "prompt")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "negative prompt")
        XCTAssertTrue(html.contains("red&lt;i&gt;&amp;&quot;&#39;"), "name")
        XCTAssertTrue(html.contains("test &lt;u&gt;bundle&lt;/u&gt;"), "generator")
        for raw in ["<b>", "<i>", "<u>", "<script"] { XCTAssertFalse(html.contains(raw), raw) }
        let sections = try Section.all(in: html)
        XCTAssertEqual(sections.map(\.name), [name], "the attribute reads back as the name")
        for link in try attributes(["src", "href"], in: html) where !link.hasPrefix("#") {
            XCTAssertNoThrow(try PNGImage.read(path: report + "/" + link), link)
        }
    }

    /// A case's settings line names the bundle fields that change how it runs: custom timesteps,
    /// the text length, caption cleaning and the aspect-ratio bins (the Σ 1024 bundle has the bin
    /// and the length; one case of the copy below gets the rest).
    func testSettingsNameTheRunsOptions() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/sigma.f32.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-sigma-1024"), "-o", store, "--type", "f32"]).status, 0)
        let report = dir + "/report"
        let run = try CLI.run(["verify", "--model", store, "--reference", CLI.fixture("reference-sigma-1024"), "--report", report])
        XCTAssertEqual(run.status, 0, run.stderr)
        let html = try page(report)
        XCTAssertTrue(html.contains("200×120 (through its aspect-ratio bin)"), html)
        XCTAssertTrue(html.contains("300 text tokens"), html)
        XCTAssertFalse(html.contains("caption cleaned"), "the Σ bundle was made with clean_caption=False")
        // DDPM at 400 with cleaning, from the tiny α store and the DMD sampler folder.
        let alpha = dir + "/alpha.f32.gguf"
        XCTAssertEqual(try CLI.run(["convert", CLI.fixture("tiny-pixart-512"), "-o", alpha, "--type", "f32"]).status, 0)
        let bundle = dir + "/dmd"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLI.fixture("reference-dmd/dmd-1step.png"), toPath: bundle + "/dmd.png")
        let cases: [String: Any] = ["cases": [[
            "name": "dmd", "prompt": "A small cactus with a happy face in the Sahara desert.", "seed": 3, "guidance_scale": 1.0,
            "height": 16, "width": 16, "scheduler": "ddpm", "timesteps": [400], "clean_caption": true, "image": "dmd.png",
        ] as [String: Any]]]
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: bundle + "/cases.json"))
        let dmd = try CLI.run(["verify", "--model", alpha, "--model", CLI.fixture("tiny-pixart-dmd"), "--reference", bundle,
                               "--report", dir + "/dmd-report"])
        XCTAssertEqual(dmd.status, 0, dmd.stdout + dmd.stderr)
        let dmdPage = try page(dir + "/dmd-report")
        XCTAssertTrue(dmdPage.contains("1 steps · guidance 1 · ddpm · timesteps 400 · caption cleaned · 16×16"), dmdPage)
    }

    // MARK: - Folders it cannot use

    func testUnusableReportFoldersFailClearlyAndLeaveNothing() throws {
        let dir = try CLI.temporaryDirectory()
        let bundle = CLI.fixture("reference-512")
        let model = CLI.fixture("tiny-pixart-512")
        func verify(_ report: String, model: String = model) throws -> CLIResult {
            try CLI.run(["verify", "--model", model, "--reference", bundle, "--report", report])
        }

        // A regular file: refused before any work (usage error), left as it was.
        let file = dir + "/file.txt"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: file))
        let onFile = try verify(file)
        XCTAssertEqual(onFile.status, 2, onFile.stderr)
        XCTAssertTrue(onFile.stderr.contains("--report \(file)") && onFile.stderr.contains("not a folder"), onFile.stderr)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "keep")

        // Under a regular file: the folder cannot be made (exit 1, the system's reason).
        let under = try verify(file + "/report")
        XCTAssertEqual(under.status, 1, under.stderr)
        XCTAssertTrue(under.stderr.contains("--report \(file)/report") && under.stderr.contains("Not a directory"), under.stderr)

        // A folder with other files: not replaced.
        let other = dir + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
        let onOther = try verify(other)
        XCTAssertEqual(onOther.status, 2, onOther.stderr)
        XCTAssertTrue(onOther.stderr.contains("not a pixconv report"), onOther.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: other), ["notes.txt"])

        // A folder that cannot be written (not for root, whom permissions do not stop).
        if geteuid() != 0 {
            let locked = dir + "/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
            chmod(locked, 0o555)
            defer { chmod(locked, 0o755) }
            let denied = try verify(locked + "/report")
            XCTAssertEqual(denied.status, 1, denied.stderr)
            XCTAssertTrue(denied.stderr.contains("--report") && denied.stderr.contains("ermission denied"), denied.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: locked), [])
        }

        // An error after the staging folder was made (a model that cannot load): nothing left.
        let report = dir + "/report"
        let broken = try verify(report, model: CLI.fixture("tiny-pixart-512/transformer"))
        XCTAssertEqual(broken.status, 1, broken.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: report))
        XCTAssertEqual(leftovers(beside: report), [])

        // --save-diff cannot go into the folder the report replaces.
        for diffs in [report, report + "/diffs", report + "/./diffs/"] {
            let inside = try CLI.run(["verify", "--model", model, "--reference", bundle, "--report", report, "--save-diff", diffs])
            XCTAssertEqual(inside.status, 2, diffs)
            XCTAssertTrue(inside.stderr.contains("--save-diff cannot be the --report folder"), inside.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: report))

        // --report needs --reference.
        let alone = try CLI.run(["verify", "--model", model, "--report", report])
        XCTAssertEqual(alone.status, 2)
        XCTAssertTrue(alone.stderr.contains("--report goes with --reference"), alone.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: report))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["file.txt", "other"] + (geteuid() != 0 ? ["locked"] : []).sorted())
    }

    // MARK: - Helpers

    /// `verify --json`'s output.
    struct Summary: Decodable {
        struct Case: Decodable {
            var name: String
            var psnr: Double?
            var ssim: Double
            var max_difference: Int
            var passed: Bool
        }
        var cases: [Case]
        var passed: Bool
        var report: String?
    }

    private func demoStore(in dir: String) throws -> String {
        let store = dir + "/demo.q8_0.gguf"
        let convert = try CLI.run(["convert", CLI.fixture("demo-pixart"), "-o", store, "--type", "q8_0"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        return store
    }

    private func cases(ofJSON text: String) throws -> [[String: Any]] {
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        return try XCTUnwrap(summary["cases"] as? [[String: Any]])
    }

    private func page(_ report: String) throws -> String {
        try String(contentsOfFile: report + "/index.html", encoding: .utf8)
    }

    /// Staging or set-aside folders of a report writer left beside `report`.
    private func leftovers(beside report: String) -> [String] {
        let url = URL(fileURLWithPath: report)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)) ?? []
        return names.filter { $0.hasPrefix("." + url.lastPathComponent + ".pixconv-") }
    }

    /// The unescaped values of the named attributes, in page order.
    private func attributes(_ names: [String], in html: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: #"\s(?:"# + names.joined(separator: "|") + #")="([^"]*)""#)
        let ns = html as NSString
        return regex.matches(in: html, range: NSRange(location: 0, length: ns.length)).map {
            Self.unescape(ns.substring(with: $0.range(at: 1)))
        }
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// One `<section class="case …">` of the page and its data attributes.
    struct Section {
        var html: String
        var name: String
        var passed: Bool
        var psnr: Double?
        var ssim: Double?
        var maxDifference: Int?

        static func all(in html: String) throws -> [Section] {
            let regex = try NSRegularExpression(pattern: #"<section class="case (pass|fail)"[^>]*>.*?</section>"#,
                                                options: [.dotMatchesLineSeparators])
            let ns = html as NSString
            return regex.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { match in
                let text = ns.substring(with: match.range)
                let open = String(text.prefix { $0 != ">" })
                func attribute(_ key: String) -> String? {
                    guard let r = open.range(of: " \(key)=\"") else { return nil }
                    let rest = open[r.upperBound...]
                    return rest.firstIndex(of: "\"").map { VerifyReportTests.unescape(String(rest[..<$0])) }
                }
                let klass = ns.substring(with: match.range(at: 1))
                let passed = attribute("data-passed")
                XCTAssertEqual(passed, klass == "pass" ? "true" : "false", "class and data-passed agree")
                return Section(html: text, name: attribute("data-name") ?? "", passed: klass == "pass",
                               psnr: attribute("data-psnr").flatMap { $0 == "inf" ? .infinity : Double($0) },
                               ssim: attribute("data-ssim").flatMap(Double.init),
                               maxDifference: attribute("data-max-difference").flatMap { Int($0) })
            }
        }
    }
}
