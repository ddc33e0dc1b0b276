import ArgumentParser
import Foundation
import PixconvCore
import PixconvImage
import PixconvRuntime
import PixconvStore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a conversion: regenerate reference images and compare, or check a store's integrity.",
        discussion: """
            With --reference DIR, every case of DIR/cases.json is generated again and compared with its
            image (PSNR, SSIM, largest pixel difference). Exit status 0 when every case meets the
            thresholds, 1 when one does not, 2 for unusable input. Default thresholds depend on the
            store's weight type (formats/verify.md): f32 40 dB / 0.99, f16 and bf16 30 dB / 0.95,
            q8_0 15 dB / 0.75, q4_0 10 dB / 0.45 (set from the trained demo model).

            With --record DIR --prompts FILE, pixconv makes a reference bundle itself from a trusted
            model (for checkpoints diffusers cannot run here). With neither, each --model store has its
            structure and every tensor's CRC-32 checked, and the first damaged tensor is named.

            With --report DIR (goes with --reference), DIR/index.html is written: a static page with
            each case's reference image, generated image, difference heat map and figures, failing
            cases first, and the PNGs beside it (relative links, no scripts), so that CI can keep DIR.
            It is written when cases fail too, and replaces a previous report in DIR whole; a DIR that
            exists must be empty or such a report. Nothing is left half-written on an error.

            Examples:
              pixconv verify --model pixart-512.q8_0.gguf --reference fixtures/reference-512
              pixconv verify --model pixart-512.q4_0.gguf --reference ref/ --min-psnr 20 --save-diff diffs/ --json
              pixconv verify --model demo.q8_0.gguf --reference fixtures/reference-demo --report verify-report/
              pixconv verify --record ref/ --model pixart-512.f32.gguf --prompts prompts.json
              pixconv verify --model pixart-512.q8_0.gguf
            """)

    @Option(name: .customLong("model"), help: "A store, diffusers folder or checkpoint (repeatable).")
    var models: [String] = []

    @Option(help: "A reference bundle folder (cases.json and images) to compare against.")
    var reference: String?

    @Option(help: "Record a new reference bundle into this folder (needs --prompts).")
    var record: String?

    @Option(help: "A JSON list of cases (as in cases.json, without images) for --record.")
    var prompts: String?

    @Option(name: .customLong("min-psnr"), help: "Lowest acceptable PSNR in dB (default: by weight type).")
    var minPSNR: Double?

    @Option(name: .customLong("min-ssim"), help: "Lowest acceptable SSIM (default: by weight type).")
    var minSSIM: Double?

    @Option(name: .customLong("save-diff"), help: "Write each generated image and a difference heat map here.")
    var saveDiff: String?

    @Option(help: ArgumentHelp("Write an HTML report of the comparison into this folder (index.html and its PNGs).",
                               valueName: "dir"))
    var report: String?

    @Flag(help: "Print the per-case figures as JSON.")
    var json = false

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model") }
        if reference != nil && record != nil { throw ValidationError("give --reference or --record, not both") }
        if record != nil && prompts == nil { throw ValidationError("--record needs --prompts FILE") }
        if prompts != nil && record == nil { throw ValidationError("--prompts goes with --record") }
        if report != nil && reference == nil { throw ValidationError("--report goes with --reference") }
        if let report, let saveDiff {
            func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
            let r = absolute(report), d = absolute(saveDiff)
            if d == r || d.hasPrefix(r + "/") {
                throw ValidationError("--save-diff cannot be the --report folder or inside it: the report replaces that folder whole")
            }
        }
    }

    func run() throws {
        if let record, let prompts {
            try recordBundle(into: record, prompts: prompts)
        } else if let reference {
            try compare(with: reference)
        } else {
            try checkIntegrity()
        }
    }

    // MARK: - Integrity

    struct IntegrityReport: Encodable {
        var path: String
        var ok: Bool
        var tensors: Int
        var damage: String?
        var damagedTensor: String?

        enum CodingKeys: String, CodingKey {
            case path, ok, tensors, damage
            case damagedTensor = "damaged_tensor"
        }
    }

    private func checkIntegrity() throws {
        var reports: [IntegrityReport] = []
        for model in models {
            let store: PixconvStore
            do {
                store = try PixconvStore(path: model, checkHeader: false)
            } catch {
                reports.append(IntegrityReport(path: model, ok: false, tensors: 0, damage: String(describing: error)))
                continue
            }
            let damage = store.verifyAll()
            reports.append(IntegrityReport(path: model, ok: damage == nil, tensors: store.tensors.count,
                                           damage: damage?.description, damagedTensor: damage?.tensorName))
        }
        if json {
            try printJSON(["stores": reports])
        } else {
            for r in reports {
                print(terminalSafe(r.ok ? "\(r.path): ok (\(r.tensors) tensors, every CRC-32 matches)" : "\(r.path): DAMAGED: \(r.damage ?? "")"))
            }
        }
        if reports.contains(where: { !$0.ok }) { throw CheckFailed(description: "") }
    }

    // MARK: - Comparison

    struct CaseResult: Encodable {
        var name: String
        var psnr: Double
        var ssim: Double
        var maxDifference: Int
        var passed: Bool
        var seconds: Double

        enum CodingKeys: String, CodingKey {
            case name, psnr, ssim, passed, seconds
            case maxDifference = "max_difference"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            // JSON has no infinity: identical images report psnr null.
            if psnr.isFinite { try c.encode(psnr, forKey: .psnr) } else { try c.encodeNil(forKey: .psnr) }
            try c.encode(ssim, forKey: .ssim)
            try c.encode(maxDifference, forKey: .maxDifference)
            try c.encode(passed, forKey: .passed)
            try c.encode(seconds, forKey: .seconds)
        }
    }

    struct ComparisonReport: Encodable {
        var reference: String
        var models: [String]
        var weightType: String
        var minPSNR: Double
        var minSSIM: Double
        var cases: [CaseResult]
        var passed: Bool
        /// DIR/index.html of `--report DIR`; absent without it.
        var report: String?

        enum CodingKeys: String, CodingKey {
            case reference, models, cases, passed, report
            case weightType = "weight_type", minPSNR = "min_psnr", minSSIM = "min_ssim"
        }
    }

    private func compare(with folder: String) throws {
        let bundle: ReferenceBundle
        do { bundle = try ReferenceBundle(folder: folder) } catch { throw UsageError(String(describing: error)) }
        // Read every expected image first, so unusable input stops before any work.
        var expected: [String: (rgb: [UInt8], width: Int, height: Int)] = [:]
        for c in bundle.cases {
            let path = folder + "/" + c.image
            do {
                expected[c.name] = try PNGImage.read(path: path)
            } catch {
                throw UsageError("\(folder)/cases.json: case \"\(c.name)\": cannot read image \(c.image): \(error)")
            }
            let e = expected[c.name]!
            guard e.width == c.width, e.height == c.height else {
                throw UsageError("\(folder)/cases.json: case \"\(c.name)\": image \(c.image) is \(e.width)×\(e.height), the case asks for \(c.width)×\(c.height)")
            }
        }
        let weightType = VerifyThresholds.weightType(of: models)
        let thresholds = VerifyThresholds.defaults(for: weightType)
        let minP = minPSNR ?? thresholds.psnr, minS = minSSIM ?? thresholds.ssim
        // The report's staging folder is made before any work, so a DIR that cannot be used stops here.
        let reportWriter: VerifyReportWriter?
        do { reportWriter = try report.map { try VerifyReportWriter(directory: $0) } } catch let error as VerifyReportWriter.ReportError {
            throw CheckFailed(description: error.description)
        }
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: models))
        if let saveDiff { try FileManager.default.createDirectory(atPath: saveDiff, withIntermediateDirectories: true) }

        var results: [CaseResult] = []
        let bar = ProgressBar(label: "verifying", total: bundle.cases.count, enabled: !json && isatty(2) == 1)
        for c in bundle.cases {
            let start = Date()
            guard let want = expected[c.name] else {
                throw UsageError("case \"\(c.name)\": the reference bundle has no image for it")
            }
            guard let image = try pipeline.generate(c.request).first else {
                throw UsageError("case \"\(c.name)\": the pipeline produced no image")
            }
            let got = image.rgb8
            guard image.width == want.width, image.height == want.height else {
                throw UsageError("case \"\(c.name)\": generated \(image.width)×\(image.height), reference is \(want.width)×\(want.height)")
            }
            let psnr = try ImageMetrics.psnr(want.rgb, got)
            let ssim = try ImageMetrics.ssim(want.rgb, got, width: want.width, height: want.height)
            let maxDiff = try ImageMetrics.maxAbsDifference(want.rgb, got)
            let result = CaseResult(name: c.name, psnr: psnr, ssim: ssim, maxDifference: maxDiff,
                                    passed: psnr >= minP && ssim >= minS, seconds: Date().timeIntervalSince(start))
            results.append(result)
            let heat = saveDiff == nil && reportWriter == nil ? []
                : try ImageDiff.heatmap(want.rgb, got, width: image.width, height: image.height)
            if let saveDiff {
                let stem = saveDiff + "/" + c.name
                try PNGImage.write(path: stem + ".generated.png", rgb: got, width: image.width, height: image.height)
                try PNGImage.write(path: stem + ".diff.png", rgb: heat, width: image.width, height: image.height)
            }
            do {
                try reportWriter?.add(c, result: result, reference: want.rgb, generated: got, heatmap: heat,
                                      width: image.width, height: image.height)
            } catch let error as VerifyReportWriter.ReportError {
                throw CheckFailed(description: error.description)
            }
            bar.advance()
        }
        bar.finish()
        let passed = results.allSatisfy(\.passed)
        // The report is written before the figures are printed, failing cases or not.
        var page: String?
        if let reportWriter {
            let header = VerifyReportWriter.Header(
                models: models, weightType: weightType, minPSNR: minP, minSSIM: minS, psnrGiven: minPSNR != nil,
                ssimGiven: minSSIM != nil, reference: folder, generator: bundle.generator, passed: passed,
                version: PixconvVersion.string, date: Date())
            do { try reportWriter.commit(header) } catch let error as VerifyReportWriter.ReportError {
                throw CheckFailed(description: error.description)
            }
            page = reportWriter.target + "/index.html"
        }
        let summary = ComparisonReport(reference: folder, models: models, weightType: weightType, minPSNR: minP,
                                       minSSIM: minS, cases: results, passed: passed, report: page)
        if json {
            try printJSON(summary)
        } else {
            print(VerifyThresholds.table(summary))
            if let page { print("report: \(page)") }
        }
        if !passed {
            let failing = results.filter { !$0.passed }.map(\.name).joined(separator: ", ")
            throw CheckFailed(description: "below the thresholds (PSNR ≥ \(minP) dB, SSIM ≥ \(minS)): \(failing)")
        }
    }

    // MARK: - Recording

    private func recordBundle(into folder: String, prompts: String) throws {
        let cases: [ReferenceBundle.Case]
        do { cases = try ReferenceBundle.Case.prompts(path: prompts) } catch { throw UsageError(String(describing: error)) }
        let pipeline = try PixArtPipeline(components: try PipelineComponents.load(paths: models))
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let bar = ProgressBar(label: "recording", total: cases.count, enabled: !json && isatty(2) == 1)
        for c in cases {
            guard let image = try pipeline.generate(c.request).first else { continue }
            try PNGImage.write(path: folder + "/" + c.image, rgb: image.rgb8, width: image.width, height: image.height,
                               textChunks: [("prompt", c.prompt), ("seed", String(c.seed))])
            bar.advance()
        }
        bar.finish()
        let names = models.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
        try ReferenceBundle.write(generator: "pixconv \(PixconvVersion.string) from \(names)", cases: cases, to: folder)
        if json { try printJSON(["reference": folder, "cases": String(cases.count)]) } else {
            print("recorded \(cases.count) case(s) into \(folder)")
        }
    }
}
