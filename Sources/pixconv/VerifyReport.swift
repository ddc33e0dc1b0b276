import Foundation
import PixconvCore
import PixconvImage
import PixconvRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `pixconv verify --report DIR`: a static HTML page (DIR/index.html) with every case's reference
/// image, generated image and difference heat map (PNG files beside it, linked relatively) and its
/// figures, failing cases first (`formats/verify.md`, "Report").
///
/// Written as every pixconv output, crash-safely: the page and its images go into a staging folder
/// `.<DIR name>.pixconv-<pid>-<n>.tmp` beside DIR, which is renamed onto DIR only when complete;
/// a writer dropped before `commit` (an error, a usage error found later) removes it. A DIR that
/// exists must be empty or a previous report (its index.html written by `pixconv verify`), which
/// is replaced whole.
final class VerifyReportWriter {
    /// DIR as given on the command line (for messages) and as used (trailing slashes removed).
    let given: String
    let target: String
    let staging: String
    private let parent: String
    private let base: String
    private var committed = false
    private var entries: [Entry] = []

    static let generatorMarker = "pixconv verify"

    struct Entry {
        var index: Int
        var bundleCase: ReferenceBundle.Case
        var result: Verify.CaseResult
        var width: Int
        var height: Int
        var referenceFile: String
        var generatedFile: String
        var diffFile: String
    }

    struct Header {
        var models: [String]
        var weightType: String
        var minPSNR: Double
        var minSSIM: Double
        var psnrGiven: Bool
        var ssimGiven: Bool
        var reference: String
        var generator: String
        var passed: Bool
        var version: String
        var date: Date
    }

    /// A `--report DIR` that cannot be used: a usage error (exit status 2) when DIR is not a folder
    /// pixconv may replace, otherwise the system's reason (exit status 1).
    struct ReportError: Error, CustomStringConvertible {
        var description: String
    }

    /// Checks DIR, creates its parent folders and the staging folder. Throws `UsageError` when DIR
    /// exists and is not an empty folder or a previous report, `ReportError` when a folder cannot be made.
    init(directory: String) throws {
        given = directory
        var path = directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let lastComponent = path.split(separator: "/").last.map(String.init) ?? ""
        guard !path.isEmpty, path != "/", lastComponent != ".", lastComponent != ".." else {
            throw UsageError("--report \(directory): give the path of a new or empty folder")
        }
        target = path
        base = lastComponent
        if let slash = path.lastIndex(of: "/") {
            let p = String(path[..<slash])
            parent = p.isEmpty ? "/" : p
        } else {
            parent = "."
        }
        try VerifyReportWriter.checkReplaceable(target, given: directory)
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw ReportError(description: "--report \(directory): cannot create the folder \(parent): \(VerifyReportWriter.reason(error))")
        }
        VerifyReportWriter.removeStaleStaging(folder: parent, base: base)
        var name = ""
        var made = false
        var lastErrno: Int32 = 0
        for _ in 0..<16 {
            name = parent + "/." + base + ".pixconv-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
            if mkdir(name, 0o755) == 0 { made = true; break }
            lastErrno = errno
            if lastErrno != EEXIST { break }
        }
        guard made else {
            throw ReportError(description: "--report \(directory): cannot write in \(parent): \(String(cString: strerror(lastErrno)))")
        }
        staging = name
    }

    deinit {
        if !committed { try? FileManager.default.removeItem(atPath: staging) }
    }

    /// Throws `UsageError` unless `path` is absent, an empty folder or a folder holding a previous report.
    static func checkReplaceable(_ path: String, given: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw ReportError(description: "--report \(given): \(String(cString: strerror(errno)))")
        }
        let kind = info.st_mode & S_IFMT
        if kind == S_IFLNK { throw UsageError("--report \(given): is a symbolic link; give the folder itself") }
        guard kind == S_IFDIR else { throw UsageError("--report \(given): exists and is not a folder") }
        let contents: [String]
        do { contents = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw ReportError(description: "--report \(given): cannot list the folder: \(reason(error))")
        }
        if contents.isEmpty || isReport(path) { return }
        throw UsageError("--report \(given): the folder exists and is not a pixconv report (no index.html from "
            + "pixconv verify); give a new or empty folder")
    }

    /// True when `folder/index.html` was written by `pixconv verify --report`.
    static func isReport(_ folder: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: folder + "/index.html") else { return false }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 1024), as: UTF8.self)
        return head.contains("<meta name=\"generator\" content=\"\(generatorMarker)")
    }

    /// Writes the case's three images into the staging folder.
    func add(_ bundleCase: ReferenceBundle.Case, result: Verify.CaseResult, reference: [UInt8], generated: [UInt8],
             heatmap: [UInt8], width: Int, height: Int) throws {
        let index = entries.count + 1
        let stem = String(format: "%03d-", index) + VerifyReportWriter.fileSafe(bundleCase.name)
        let entry = Entry(index: index, bundleCase: bundleCase, result: result, width: width, height: height,
                          referenceFile: stem + ".reference.png", generatedFile: stem + ".generated.png",
                          diffFile: stem + ".diff.png")
        for (file, rgb) in [(entry.referenceFile, reference), (entry.generatedFile, generated), (entry.diffFile, heatmap)] {
            do {
                try PNGImage.write(path: staging + "/" + file, rgb: rgb, width: width, height: height)
            } catch {
                throw ReportError(description: "--report \(given): cannot write \(file): \(error)")
            }
        }
        entries.append(entry)
    }

    /// Writes index.html and puts the finished folder at DIR (replacing a previous report there).
    func commit(_ header: Header) throws {
        let html = VerifyReportWriter.page(header, entries)
        do {
            try AtomicFile.write(Array(html.utf8), to: staging + "/index.html")
        } catch {
            throw ReportError(description: "--report \(given): cannot write index.html: \(error)")
        }
        try VerifyReportWriter.checkReplaceable(target, given: given)
        var old: String?
        if access(target, F_OK) == 0 {
            let aside = parent + "/." + base + ".pixconv-\(getpid())-old-\(UInt32.random(in: 0...UInt32.max)).tmp"
            guard rename(target, aside) == 0 else {
                throw ReportError(description: "--report \(given): cannot move the previous report aside: \(String(cString: strerror(errno)))")
            }
            old = aside
        }
        guard rename(staging, target) == 0 else {
            let e = errno
            if let old { rename(old, target) }
            throw ReportError(description: "--report \(given): cannot rename the finished report into place: \(String(cString: strerror(e)))")
        }
        committed = true
        if let old { try? FileManager.default.removeItem(atPath: old) }
        let dir = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    // MARK: - Names

    /// A case name as a file-name part: letters, digits, `.`, `_` and `-` kept (at most 64), others `_`.
    static func fileSafe(_ name: String) -> String {
        var out = ""
        for scalar in name.unicodeScalars.prefix(64) {
            let ok = scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "_" || scalar == "-")
            out.unicodeScalars.append(ok ? scalar : "_")
        }
        return out.isEmpty ? "case" : out
    }

    /// Removes staging folders `.<base>.pixconv-<pid>-….tmp` in `folder` whose process no longer exists.
    static func removeStaleStaging(folder: String, base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        let prefix = "." + base + ".pixconv-"
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            var info = stat()
            guard lstat(folder + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: folder + "/" + name) }
        }
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    // MARK: - The page

    /// The size an image is shown at: tiny images scaled up by a whole factor to at least 256 pixels
    /// on their longer side (drawn pixelated), large ones scaled down to at most 512.
    static func displaySize(width: Int, height: Int) -> (width: Int, height: Int) {
        let longer = max(width, height, 1)
        if longer < 256 {
            let k = (256 + longer - 1) / longer
            return (width * k, height * k)
        }
        if longer > 512 {
            return (max(1, width * 512 / longer), max(1, height * 512 / longer))
        }
        return (width, height)
    }

    static func psnrText(_ psnr: Double) -> String { psnr.isFinite ? String(format: "%.2f dB", psnr) : "∞ (identical)" }
    static func ssimText(_ ssim: Double) -> String { String(format: "%.4f", ssim) }
    /// The exact figure, as Swift prints a Double (shortest text that reads back to the same value).
    static func exact(_ value: Double) -> String { value.isFinite ? "\(value)" : (value > 0 ? "inf" : "-inf") }
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }

    static let style = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px; color: #1d1d1f; background: #fff; line-height: 1.4; }
        h1 { font-size: 22px; margin: 0 0 12px 0; }
        h2 { font-size: 17px; margin: 0 0 6px 0; }
        code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; word-break: break-all; }
        table { border-collapse: collapse; }
        th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
        table.meta th { color: #555; font-weight: 600; white-space: nowrap; }
        table.cases { margin: 12px 0 20px 0; }
        table.cases th, table.cases td { border-bottom: 1px solid #ddd; padding: 4px 14px 4px 0; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .verdict, .badge { display: inline-block; padding: 1px 8px; border-radius: 4px; color: #fff; font-weight: 700; }
        .verdict.pass, .badge.pass { background: #1a7f37; }
        .verdict.fail, .badge.fail { background: #cf222e; }
        section.case { border: 1px solid #d0d7de; border-left-width: 6px; border-radius: 6px; padding: 12px 16px; margin: 0 0 18px 0; }
        section.case.pass { border-left-color: #1a7f37; }
        section.case.fail { border-left-color: #cf222e; background: #fff8f8; }
        p.prompt { margin: 4px 0; }
        p.settings { margin: 4px 0 8px 0; color: #555; font-size: 14px; }
        table.figures td.below { color: #cf222e; font-weight: 700; }
        div.images { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 8px; }
        figure { margin: 0; }
        figure img { display: block; border: 1px solid #888; image-rendering: crisp-edges; image-rendering: pixelated; max-width: 100%; height: auto; background: #eee; }
        figcaption { font-size: 13px; color: #555; margin-top: 4px; }
        .scale { display: inline-block; width: 90px; height: 10px; vertical-align: middle; border: 1px solid #888; background: linear-gradient(to right, #000, #f00, #ff0, #fff); }
        footer { color: #777; font-size: 12px; margin-top: 24px; }
        """

    static func page(_ h: Header, _ entries: [Entry]) -> String {
        let e = HTMLText.escape
        // Failing cases first, each group in the bundle's order.
        let ordered = entries.filter { !$0.result.passed } + entries.filter(\.result.passed)
        let failing = entries.filter { !$0.result.passed }.count
        let verdict = h.passed ? "PASS" : "FAIL"
        let summary = h.passed ? "all \(entries.count) case(s) pass"
            : "\(failing) of \(entries.count) case(s) below the thresholds"
        let date = ISO8601DateFormatter().string(from: h.date)
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="generator" content="\(generatorMarker) \(e(h.version))">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>pixconv verify: \(verdict), \(e(summary))</title>
            <style>
            \(style)
            </style>
            </head>
            <body>
            <header>
            <h1>pixconv verify report: <span class="verdict \(h.passed ? "pass" : "fail")" id="verdict">\(verdict)</span></h1>
            <p class="summary">\(e(summary)) (failing cases first).</p>
            <table class="meta">

            """
        let stores = h.models.map { "<code>\(e($0))</code>" }.joined(separator: "<br>")
        let psnrSource = h.psnrGiven ? "--min-psnr" : "default for \(h.weightType)"
        let ssimSource = h.ssimGiven ? "--min-ssim" : "default for \(h.weightType)"
        out += "<tr><th>Store\(h.models.count == 1 ? "" : "s")</th><td>\(stores)</td></tr>\n"
        out += "<tr><th>Weight type</th><td id=\"weight-type\">\(e(h.weightType))</td></tr>\n"
        out += "<tr><th>Thresholds</th><td id=\"thresholds\" data-min-psnr=\"\(e(exact(h.minPSNR)))\" data-min-ssim=\"\(e(exact(h.minSSIM)))\">"
            + (h.psnrGiven || h.ssimGiven
                ? "PSNR ≥ \(e(number(h.minPSNR))) dB (\(e(psnrSource))), SSIM ≥ \(e(number(h.minSSIM))) (\(e(ssimSource)))"
                : "PSNR ≥ \(e(number(h.minPSNR))) dB, SSIM ≥ \(e(number(h.minSSIM))) (the defaults for \(e(h.weightType)))")
            + "</td></tr>\n"
        out += "<tr><th>Reference bundle</th><td><code>\(e(h.reference))</code><br>made by \(e(h.generator))</td></tr>\n"
        out += "<tr><th>Verdict</th><td>\(verdict): \(e(summary))</td></tr>\n"
        out += "<tr><th>pixconv</th><td>\(e(h.version))</td></tr>\n"
        out += "<tr><th>Date</th><td>\(e(date))</td></tr>\n"
        out += "</table>\n</header>\n<nav>\n<table class=\"cases\">\n"
        out += "<thead><tr><th>case</th><th>result</th><th class=\"num\">PSNR</th><th class=\"num\">SSIM</th><th class=\"num\">largest pixel difference</th></tr></thead>\n<tbody>\n"
        for entry in ordered {
            let r = entry.result
            out += "<tr><td><a href=\"#case-\(entry.index)\">\(e(r.name))</a></td>"
                + "<td><span class=\"badge \(r.passed ? "pass" : "fail")\">\(r.passed ? "pass" : "FAIL")</span></td>"
                + "<td class=\"num\">\(e(psnrText(r.psnr)))</td><td class=\"num\">\(ssimText(r.ssim))</td>"
                + "<td class=\"num\">\(r.maxDifference)</td></tr>\n"
        }
        out += "</tbody>\n</table>\n</nav>\n<main>\n"
        for entry in ordered { out += section(entry, h) }
        out += "</main>\n<footer>Written by pixconv \(e(h.version)) on \(e(date)). "
            + "Figures are over 8-bit RGB: PSNR with peak 255, SSIM with a Gaussian window (σ 1.5), "
            + "largest absolute difference of one channel. Each heat map runs from black (equal) through red "
            + "and yellow to white at that case's largest difference.</footer>\n</body>\n</html>\n"
        return out
    }

    static func section(_ entry: Entry, _ h: Header) -> String {
        let e = HTMLText.escape
        let r = entry.result, c = entry.bundleCase
        let psnrOK = r.psnr >= h.minPSNR, ssimOK = r.ssim >= h.minSSIM
        let shown = displaySize(width: entry.width, height: entry.height)
        var out = "<section class=\"case \(r.passed ? "pass" : "fail")\" id=\"case-\(entry.index)\" data-name=\"\(e(r.name))\" "
            + "data-passed=\"\(r.passed)\" data-psnr=\"\(exact(r.psnr))\" data-ssim=\"\(exact(r.ssim))\" "
            + "data-max-difference=\"\(r.maxDifference)\">\n"
        out += "<h2><span class=\"badge \(r.passed ? "pass" : "fail")\">\(r.passed ? "pass" : "FAIL")</span> \(e(r.name))</h2>\n"
        out += "<p class=\"prompt\">Prompt: <q class=\"prompt-text\">\(e(c.prompt))</q></p>\n"
        var settings: [String] = []
        if !c.negativePrompt.isEmpty { settings.append("negative prompt <q class=\"negative-prompt-text\">\(e(c.negativePrompt))</q>") }
        settings += ["seed \(c.seed)", "\(c.steps) steps", "guidance \(e(number(Double(c.guidanceScale))))", e(c.scheduler)]
        if let t = c.timesteps { settings.append("timesteps \(t.map(String.init).joined(separator: ","))") }
        if let n = c.maxSequenceLength { settings.append("\(n) text tokens") }
        if c.cleanCaption { settings.append("caption cleaned") }
        settings += ["\(c.width)×\(c.height)" + (c.resolutionBinning ? " (through its aspect-ratio bin)" : ""),
                     String(format: "%.2f s", r.seconds)]
        out += "<p class=\"settings\">\(settings.joined(separator: " · "))</p>\n"
        out += "<table class=\"figures\">\n"
        out += "<tr><th>PSNR</th><td class=\"psnr num\">\(e(psnrText(r.psnr)))</td><td>needs ≥ \(e(number(h.minPSNR))) dB</td>"
            + "<td\(psnrOK ? "" : " class=\"below\"")>\(psnrOK ? "ok" : "below")</td></tr>\n"
        out += "<tr><th>SSIM</th><td class=\"ssim num\">\(ssimText(r.ssim))</td><td>needs ≥ \(e(number(h.minSSIM)))</td>"
            + "<td\(ssimOK ? "" : " class=\"below\"")>\(ssimOK ? "ok" : "below")</td></tr>\n"
        out += "<tr><th>Largest pixel difference</th><td class=\"max-difference num\">\(r.maxDifference)</td><td>of 255</td><td></td></tr>\n"
        out += "</table>\n<div class=\"images\">\n"
        let scale = r.maxDifference == 0 ? "no difference: all black"
            : "<span class=\"scale\"></span> 0 … \(r.maxDifference)"
        for (file, caption, alt) in [
            (entry.referenceFile, "reference (\(e(c.image)))", "reference image"),
            (entry.generatedFile, "generated by pixconv", "generated image"),
            (entry.diffFile, "difference heat map: \(scale)", "difference heat map"),
        ] {
            out += "<figure><a href=\"\(e(file))\"><img src=\"\(e(file))\" width=\"\(shown.width)\" height=\"\(shown.height)\" "
                + "alt=\"\(alt) of case \(e(r.name))\"></a><figcaption>\(caption)</figcaption></figure>\n"
        }
        out += "</div>\n</section>\n"
        return out
    }
}
